<?php
/**
 * Plugin Name: Upkeep URI Test
 * Description: Test plugin for upkeep's end-to-end test. Updates through WordPress core's own `Update URI` header and `update_plugins_{$hostname}` filter (WordPress 5.8+), asking upkeep in the Plugin Update Checker dialect (SPEC §8.2).
 * Version: 1.0.0
 * Requires at least: 5.8
 * Requires PHP: 7.4
 * Author: upkeep tests
 * License: GPL-2.0-or-later
 * Update URI: http://127.0.0.1/upkeep-uri-test
 *
 * WordPress keys the filter on the *host* of the Update URI header only (no scheme, no
 * port): this header makes core call `update_plugins_127.0.0.1` for this plugin, and never
 * send it to wordpress.org. The server actually asked is the option `upkeep_test_url` (set
 * by the harness, e.g. http://127.0.0.1:41234), with the account prefix in
 * `upkeep_test_prefix` and an optional license key in `upkeep_test_key_upkeep-uri-test` or
 * `upkeep_test_key`.
 */

defined( 'ABSPATH' ) || exit;

/** The host WordPress core derives the filter name from: that of our own Update URI header. */
function upkeep_uri_test_update_host() {
	$headers = get_file_data( __FILE__, array( 'UpdateURI' => 'Update URI' ) );
	return wp_parse_url( sanitize_url( $headers['UpdateURI'] ), PHP_URL_HOST );
}

add_filter( 'update_plugins_' . upkeep_uri_test_update_host(), 'upkeep_uri_test_check', 10, 4 );

/**
 * Core's `update_plugins_{$hostname}` filter: every plugin whose Update URI has this host
 * passes through here, so answer only for our own file.
 *
 * @param array|false $update      What an earlier filter answered (false: nothing yet).
 * @param array       $plugin_data The plugin's headers (Version, UpdateURI, …).
 * @param string      $plugin_file e.g. upkeep-uri-test/upkeep-uri-test.php.
 * @return array|false The update data core expects (`version` required), or $update.
 */
function upkeep_uri_test_check( $update, $plugin_data, $plugin_file, $locales ) {
	if ( plugin_basename( __FILE__ ) !== $plugin_file ) {
		return $update;
	}
	$base   = get_option( 'upkeep_test_url' );
	$prefix = get_option( 'upkeep_test_prefix' );
	if ( ! $base || ! $prefix ) {
		return $update;
	}
	$slug = dirname( $plugin_file );

	// The Plugin Update Checker request: installed_version, php, locale, checking_for_updates,
	// and the license key as `license_key` (how PUC users add it, via addQueryArgFilter).
	$args = array(
		'installed_version'    => $plugin_data['Version'],
		'php'                  => PHP_VERSION,
		'locale'               => get_locale(),
		'checking_for_updates' => '1',
	);
	$key  = get_option( 'upkeep_test_key_' . $slug, get_option( 'upkeep_test_key', '' ) );
	if ( '' !== (string) $key ) {
		$args['license_key'] = $key;
	}
	$url = add_query_arg(
		rawurlencode_deep( $args ),
		untrailingslashit( $base ) . '/updates/' . rawurlencode( $prefix ) . '/' . rawurlencode( $slug )
	);

	$response = wp_remote_get(
		$url,
		array(
			'timeout' => 10,
			'headers' => array( 'Accept' => 'application/json' ),
		)
	);
	$code     = is_wp_error( $response ) ? 0 : wp_remote_retrieve_response_code( $response );
	$info     = 200 === $code ? json_decode( wp_remote_retrieve_body( $response ), true ) : null;

	// For the test's eyes only: what the server answered (the license code is not kept by core).
	update_option(
		'upkeep_test_last_answer_' . $slug,
		array(
			'url'    => preg_replace( '/([?&]license_key=)[^&]*/', '$1***', $url ),
			'status' => $code,
			'error'  => is_wp_error( $response ) ? $response->get_error_message() : null,
			'body'   => $info,
		),
		false
	);

	if ( ! is_array( $info ) || empty( $info['version'] ) ) {
		return $update;
	}

	// The shape of `update_plugins_{$hostname}` (wp-includes/update.php): core adds `id`,
	// `plugin` and `new_version` itself, and offers the update when version > installed.
	return array(
		'slug'         => $slug,
		'version'      => (string) $info['version'],
		'url'          => isset( $info['homepage'] ) ? (string) $info['homepage'] : '',
		'package'      => isset( $info['download_url'] ) ? (string) $info['download_url'] : '',
		'tested'       => isset( $info['tested'] ) ? (string) $info['tested'] : '',
		'requires'     => isset( $info['requires'] ) ? (string) $info['requires'] : '',
		'requires_php' => isset( $info['requires_php'] ) ? (string) $info['requires_php'] : '',
		'icons'        => isset( $info['icons'] ) && is_array( $info['icons'] ) ? $info['icons'] : array(),
		'banners'      => isset( $info['banners'] ) && is_array( $info['banners'] ) ? $info['banners'] : array(),
	);
}
