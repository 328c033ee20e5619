<?php
/**
 * Updates one plugin with WordPress core's own Plugin_Upgrader, from the package link that
 * the update check put into the update_plugins transient (run check-updates.php first).
 *
 *   php upgrade-plugin.php [--mode=ajax|single] PLUGIN_FILE
 *
 * --mode=ajax (default) does what the Plugins screen's "Update now" does
 * (wp_ajax_update_plugin): wp_update_plugins(), then Plugin_Upgrader::bulk_upgrade() with a
 * WP_Ajax_Upgrader_Skin; the plugin stays active. --mode=single does what
 * update.php?action=upgrade-plugin does: Plugin_Upgrader::upgrade(), which deactivates the
 * plugin, then activates it again as update.php's follow-up request would.
 *
 * Prints {"step":"upgrade","plugin","mode","package","ok":bool,"error_code","error_data","errors":[…],
 * "messages":[…],"version_before","version_after","active_before","active_after"}.
 * `ok` is core's verdict (no error, not "up to date"); the test asserts `version_after`.
 */

require __DIR__ . '/bootstrap.php';
require_once ABSPATH . 'wp-admin/includes/admin.php';
require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';

$mode = 'ajax';
$file = null;
foreach ( array_slice( $argv, 1 ) as $arg ) {
	if ( preg_match( '/^--mode=(ajax|single)$/', $arg, $m ) ) {
		$mode = $m[1];
	} elseif ( null === $file && '-' !== substr( $arg, 0, 1 ) ) {
		$file = $arg;
	} else {
		fwrite( STDERR, "usage: upgrade-plugin.php [--mode=ajax|single] PLUGIN_FILE\n" );
		exit( 2 );
	}
}
if ( null === $file || 0 !== validate_file( $file ) ) {
	fwrite( STDERR, "usage: upgrade-plugin.php [--mode=ajax|single] PLUGIN_FILE\n" );
	exit( 2 );
}

wp_set_current_user( 1 );
$before        = upkeep_installed_version( $file );
$active_before = is_plugin_active( $file );

// As the admin pages do before updating (wp_ajax_update_plugin(), and load-plugins.php for the
// page whose link leads to update.php). Not always a no-op: WordPress 6.1 leaves `checked` out
// of the transient a real check saves, so the next call checks again; and a finished
// upgrade() deletes the transient, so without this the next plugin would be "up to date".
wp_update_plugins();
$transient = get_site_transient( 'update_plugins' );
$package   = isset( $transient->response[ $file ]->package ) ? $transient->response[ $file ]->package : null;

$skin     = new WP_Ajax_Upgrader_Skin();
$upgrader = new Plugin_Upgrader( $skin );
if ( 'ajax' === $mode ) {
	$results = $upgrader->bulk_upgrade( array( $file ) );
	$result  = is_array( $results ) && isset( $results[ $file ] ) ? $results[ $file ] : $results;
	$ok      = is_array( $result ); // true means "up to date", false or WP_Error a failure.
} else {
	$result = $upgrader->upgrade( $file );
	$ok     = true === $result;
	if ( $ok && $active_before && ! is_plugin_active( $file ) ) {
		activate_plugin( $file );
	}
}

$error_code = null;
$error_data = null; // e.g. download_failed: "A valid URL was not provided." or "Forbidden"
$errors     = array();
foreach ( array( $skin->result, $result, $skin->get_errors() ) as $e ) {
	if ( ! is_wp_error( $e ) || ! $e->has_errors() ) {
		continue;
	}
	$error_code = $error_code ? $error_code : $e->get_error_code();
	if ( null === $error_data && is_string( $e->get_error_data() ) ) {
		$error_data = $e->get_error_data();
	}
	foreach ( $e->get_error_messages() as $message ) {
		$errors[] = $message;
	}
}
if ( ( true === $result && 'ajax' === $mode ) || in_array( $upgrader->strings['up_to_date'], $skin->get_upgrade_messages(), true ) ) {
	$error_code = 'up_to_date';
	$errors     = array( $upgrader->strings['up_to_date'] );
}
$ok = $ok && ! $error_code;

/** A skin message as plain text (the skins speak HTML). */
function upkeep_plain( $message ) {
	return html_entity_decode( wp_strip_all_tags( $message ), ENT_QUOTES | ENT_HTML5, 'UTF-8' );
}

clearstatcache();
wp_cache_delete( 'plugins', 'plugins' );
upkeep_print_json(
	array(
		'step'           => 'upgrade',
		'plugin'         => $file,
		'mode'           => $mode,
		'package'        => $package,
		'ok'             => $ok,
		'error_code'     => $error_code,
		'error_data'     => $error_data,
		'errors'         => array_values( array_unique( array_map( 'upkeep_plain', $errors ) ) ),
		'messages'       => array_values( array_map( 'upkeep_plain', $skin->get_upgrade_messages() ) ),
		'version_before' => $before,
		'version_after'  => upkeep_installed_version( $file ),
		'active_before'  => $active_before,
		'active_after'   => is_plugin_active( $file ),
	)
);
