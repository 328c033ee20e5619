<?php
/**
 * Plugin Name: Upkeep test: allow the test server
 * Description: Lets WordPress's "safe" HTTP requests (plugin package downloads use wp_safe_remote_get) reach exactly the test's upkeep server, which listens on loopback on a random port. Stands in for what production has: a public DNS name and port 443.
 *
 * wp_http_validate_url() refuses hosts that resolve to loopback or private addresses unless
 * `http_request_host_is_external` says otherwise, and ports other than 80, 443 and 8080
 * unless `http_allowed_safe_ports` adds them. Both filters here allow only the host *and*
 * port of the option `upkeep_test_url` (set by the harness); every other URL is judged as
 * WordPress always does.
 */

defined( 'ABSPATH' ) || exit;

/** [host, port] of the test server, or null when the harness set none. */
function upkeep_allow_test_host_target() {
	$url = get_option( 'upkeep_test_url' );
	if ( ! $url ) {
		return null;
	}
	$parts = wp_parse_url( $url );
	if ( empty( $parts['host'] ) || empty( $parts['scheme'] ) ) {
		return null;
	}
	$port = isset( $parts['port'] ) ? (int) $parts['port'] : ( 'https' === strtolower( $parts['scheme'] ) ? 443 : 80 );
	return array( strtolower( $parts['host'] ), $port );
}

/** Whether $url is on the test server (same host, same effective port). */
function upkeep_allow_test_host_matches( $host, $url ) {
	$target = upkeep_allow_test_host_target();
	$parts  = wp_parse_url( $url );
	if ( null === $target || ! $parts || empty( $parts['scheme'] ) ) {
		return false;
	}
	$port = isset( $parts['port'] ) ? (int) $parts['port'] : ( 'https' === strtolower( $parts['scheme'] ) ? 443 : 80 );
	return strtolower( trim( (string) $host, '.' ) ) === $target[0] && $port === $target[1];
}

add_filter(
	'http_request_host_is_external',
	function ( $external, $host, $url ) {
		return $external || upkeep_allow_test_host_matches( $host, $url );
	},
	10,
	3
);

add_filter(
	'http_allowed_safe_ports',
	function ( $ports, $host, $url ) {
		if ( upkeep_allow_test_host_matches( $host, $url ) ) {
			$target  = upkeep_allow_test_host_target();
			$ports[] = $target[1];
		}
		return $ports;
	},
	10,
	3
);
