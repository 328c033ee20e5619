<?php
/**
 * Plugin Name: Upkeep test: offline
 * Description: The test WordPress never talks to the internet. api.wordpress.org's plugin, theme and core update checks get an empty "nothing new" answer; every other request except to the test server (option `upkeep_test_url`) fails at once.
 *
 * Why the stub and not just a refusal: wp_update_plugins() returns early, before it runs the
 * `update_plugins_{$hostname}` filters and before it saves the transient (so before
 * `pre_set_site_transient_update_plugins` sees the final result), whenever
 * api.wordpress.org does not answer 200. A test must not depend on wordpress.org being
 * reachable, nor wait for its timeouts.
 */

defined( 'ABSPATH' ) || exit;

add_filter(
	'pre_http_request',
	function ( $pre, $args, $url ) {
		if ( false !== $pre ) {
			return $pre;
		}
		$parts = wp_parse_url( $url );
		$host  = isset( $parts['host'] ) ? strtolower( $parts['host'] ) : '';
		$path  = isset( $parts['path'] ) ? $parts['path'] : '';

		$test = get_option( 'upkeep_test_url' );
		if ( $test ) {
			$t      = wp_parse_url( $test );
			$t_port = isset( $t['port'] ) ? (int) $t['port'] : ( 'https' === ( $t['scheme'] ?? '' ) ? 443 : 80 );
			$port   = isset( $parts['port'] ) ? (int) $parts['port'] : ( 'https' === ( $parts['scheme'] ?? '' ) ? 443 : 80 );
			if ( isset( $t['host'] ) && strtolower( $t['host'] ) === $host && $t_port === $port ) {
				return false; // The test server: a real request.
			}
		}

		$empty = null;
		if ( 'api.wordpress.org' === $host && 0 === strpos( $path, '/plugins/update-check/' ) ) {
			$empty = array( 'plugins' => array(), 'translations' => array(), 'no_update' => array() );
		} elseif ( 'api.wordpress.org' === $host && 0 === strpos( $path, '/themes/update-check/' ) ) {
			$empty = array( 'themes' => array(), 'translations' => array(), 'no_update' => array() );
		} elseif ( 'api.wordpress.org' === $host && 0 === strpos( $path, '/core/version-check/' ) ) {
			// Core checks itself after every upgrade (upgrader_process_complete).
			$empty = array( 'offers' => array(), 'translations' => array() );
		}
		if ( null !== $empty ) {
			return array(
				'headers'  => array( 'content-type' => 'application/json' ),
				'body'     => wp_json_encode( $empty ),
				'response' => array( 'code' => 200, 'message' => 'OK' ),
				'cookies'  => array(),
				'filename' => null,
			);
		}
		return new WP_Error( 'upkeep_test_offline', 'The test WordPress makes no request to ' . $url );
	},
	10,
	3
);
