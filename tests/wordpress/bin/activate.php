<?php
/**
 * Activates plugins, as the Plugins screen does (activate_plugin()).
 *
 *   php activate.php upkeep-uri-test/upkeep-uri-test.php [more…]
 *
 * Prints {"step":"activate","plugins":{FILE:{"active":bool,"error":…}}}; exit 1 if one failed.
 */

require __DIR__ . '/bootstrap.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

wp_set_current_user( 1 );
$out = array();
$ok  = true;
foreach ( array_slice( $argv, 1 ) as $file ) {
	$result       = activate_plugin( $file );
	$out[ $file ] = array(
		'active' => is_plugin_active( $file ),
		'error'  => is_wp_error( $result ) ? $result->get_error_message() : null,
	);
	$ok           = $ok && $out[ $file ]['active'];
}
upkeep_print_json( array( 'step' => 'activate', 'plugins' => (object) $out ) );
exit( $ok ? 0 : 1 );
