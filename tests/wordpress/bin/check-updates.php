<?php
/**
 * Runs WordPress core's own plugin update check and prints what it found.
 *
 *   php check-updates.php [PLUGIN_FILE…]     (default: every installed upkeep-* plugin)
 *
 * Exactly what core does on a fresh check: wp_clean_plugins_cache() (which also drops the
 * update_plugins site transient), delete_site_transient('update_plugins'), wp_update_plugins().
 * Prints
 *   {"step":"check","plugins":{FILE:{"installed":"1.0.0",
 *       "offered":{"new_version","package","slug","url","tested","requires","requires_php"}|null,
 *       "no_update":{"new_version",…}|null,
 *       "answer":{"url","status","error","body"}|null}}}
 * `offered` is the entry of the transient's `response` (what the Updates screen shows and
 * Plugin_Upgrader installs from); `answer` is the server's last answer as the plugin saw it.
 */

require __DIR__ . '/bootstrap.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

wp_set_current_user( 1 );
wp_clean_plugins_cache();
delete_site_transient( 'update_plugins' );
wp_update_plugins();

$transient = get_site_transient( 'update_plugins' );
$files     = array_slice( $argv, 1 );
if ( ! $files ) {
	$files = array_values( array_filter( array_keys( get_plugins() ), function ( $f ) {
		return 0 === strpos( $f, 'upkeep-' );
	} ) );
}

/** The fields of a transient entry the test cares about (a missing field is null). */
function upkeep_entry( $entry ) {
	if ( ! $entry ) {
		return null;
	}
	$entry = (array) $entry;
	$out   = array();
	foreach ( array( 'slug', 'new_version', 'package', 'url', 'tested', 'requires', 'requires_php', 'id' ) as $k ) {
		$out[ $k ] = isset( $entry[ $k ] ) ? $entry[ $k ] : null;
	}
	return $out;
}

$plugins = array();
foreach ( $files as $file ) {
	$plugins[ $file ] = array(
		'installed' => upkeep_installed_version( $file ),
		'offered'   => upkeep_entry( isset( $transient->response[ $file ] ) ? $transient->response[ $file ] : null ),
		'no_update' => upkeep_entry( isset( $transient->no_update[ $file ] ) ? $transient->no_update[ $file ] : null ),
		'answer'    => get_option( 'upkeep_test_last_answer_' . dirname( $file ), null ),
	);
}
upkeep_print_json( array( 'step' => 'check', 'plugins' => (object) $plugins ) );
