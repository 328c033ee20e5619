<?php
/**
 * Installs WordPress into the private database (what the web installer does), through
 * wp_install() from wp-admin/includes/upgrade.php. No web server is involved.
 * Prints {"step":"install","user_id":N,"siteurl":…,"version":…}.
 */

define( 'WP_INSTALLING', true );
require __DIR__ . '/bootstrap.php';

// wp_install() mails the admin; the test machine has no mailer. (Pluggable: defined first wins.)
function wp_new_blog_notification( $blog_title, $blog_url, $user_id, $password ) {}

require_once ABSPATH . 'wp-admin/includes/upgrade.php';

if ( is_blog_installed() ) {
	fwrite( STDERR, "WordPress is already installed in this database\n" );
	exit( 1 );
}
$result = wp_install( 'upkeep e2e', 'admin', 'admin@wp.test', false, '', 'admin-password-for-tests' );
upkeep_print_json(
	array(
		'step'     => 'install',
		'user_id'  => (int) $result['user_id'],
		'siteurl'  => get_option( 'siteurl' ),
		'version'  => $GLOBALS['wp_version'],
	)
);
