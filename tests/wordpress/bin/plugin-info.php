<?php
/**
 * What the "View details" popup shows: plugins_api('plugin_information') for a slug.
 *
 *   php plugin-info.php SLUG
 *
 * Prints {"step":"info","slug":…,"info":{…}|null,"error":…}.
 */

require __DIR__ . '/bootstrap.php';
require_once ABSPATH . 'wp-admin/includes/plugin-install.php';

$slug = isset( $argv[1] ) ? $argv[1] : '';
if ( '' === $slug ) {
	fwrite( STDERR, "usage: plugin-info.php SLUG\n" );
	exit( 2 );
}
wp_set_current_user( 1 );
$info = plugins_api( 'plugin_information', array( 'slug' => $slug ) );
upkeep_print_json(
	array(
		'step'  => 'info',
		'slug'  => $slug,
		'info'  => is_wp_error( $info ) ? null : $info,
		'error' => is_wp_error( $info ) ? $info->get_error_message() : null,
	)
);
