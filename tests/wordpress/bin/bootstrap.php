<?php
/**
 * Loads the private WordPress of the harness for a CLI driver script.
 *
 * WP_ROOT (environment) is the private WordPress copy the harness made; its wp-config.php
 * (written by the harness, not Debian's) points at the private MariaDB socket and content
 * directory. Everything a driver prints on stdout is one JSON document; notes go to stderr.
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}
$upkeep_wp_root = getenv( 'WP_ROOT' );
if ( ! $upkeep_wp_root || ! is_file( $upkeep_wp_root . '/wp-load.php' ) ) {
	fwrite( STDERR, "WP_ROOT must name the harness's private WordPress copy\n" );
	exit( 2 );
}

// What a web request would carry; WordPress reads these in places even from the CLI.
$_SERVER['HTTP_HOST']       = 'wp.test';
$_SERVER['SERVER_NAME']     = 'wp.test';
$_SERVER['SERVER_PORT']     = '80';
$_SERVER['REQUEST_URI']     = '/wp-admin/';
$_SERVER['REQUEST_METHOD']  = 'GET';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$_SERVER['REMOTE_ADDR']     = '127.0.0.1';

require $upkeep_wp_root . '/wp-load.php';

/** Prints one JSON document on stdout. */
function upkeep_print_json( $value ) {
	echo wp_json_encode( $value, JSON_UNESCAPED_SLASHES ), "\n";
}

/** The installed Version header of a plugin file, read from disk now (no cache). */
function upkeep_installed_version( $plugin_file ) {
	$path = WP_PLUGIN_DIR . '/' . $plugin_file;
	if ( ! is_file( $path ) ) {
		return null;
	}
	$data = get_file_data( $path, array( 'Version' => 'Version' ) );
	return $data['Version'];
}
