<?php
/**
 * Checks one selfcheck.sh scenario: harness.sh e2e's JSON lines and the fake server's
 * request log.
 *
 *   php assert.php SCENARIO URL HARNESS_OUTPUT.jsonl REQUESTS.jsonl
 *
 * Exit 0 when every expectation holds; otherwise lists the failures and the raw outputs.
 */

list( , $scenario, $url, $out_file, $req_file ) = $argv;

function read_lines( $file ) {
	$lines = array();
	foreach ( file( $file, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES ) as $line ) {
		$doc = json_decode( $line, true );
		if ( ! is_array( $doc ) ) {
			fwrite( STDERR, "not JSON in $file: $line\n" );
			exit( 1 );
		}
		$lines[] = $doc;
	}
	return $lines;
}

$out      = read_lines( $out_file );
$requests = read_lines( $req_file );
$check    = null;
$upgrades = array();
$timings  = null;
$info     = null;
foreach ( $out as $doc ) {
	if ( 'check' === $doc['step'] ) {
		$check = $doc;
	} elseif ( 'upgrade' === $doc['step'] ) {
		$upgrades[ $doc['plugin'] ] = $doc;
	} elseif ( 'info' === $doc['step'] ) {
		$info = $doc;
	} elseif ( 'timings' === $doc['step'] ) {
		$timings = $doc['ms'];
	}
}

$failures = array();
function expect( $ok, $what ) {
	global $failures;
	if ( ! $ok ) {
		$failures[] = $what;
	}
}

/** The requests the fake server saw whose path matches $pattern. */
function requests_to( $pattern ) {
	global $requests;
	return array_values( array_filter( $requests, function ( $r ) use ( $pattern ) {
		return preg_match( $pattern, $r['path'] );
	} ) );
}

$files = array( 'upkeep-uri-test/upkeep-uri-test.php', 'upkeep-wu-test/upkeep-wu-test.php' );
expect( null !== $check, 'a check step' );
foreach ( $files as $file ) {
	$slug    = dirname( $file );
	$offered = isset( $check['plugins'][ $file ]['offered'] ) ? $check['plugins'][ $file ]['offered'] : null;
	$up      = isset( $upgrades[ $file ] ) ? $upgrades[ $file ] : null;
	expect( '1.0.0' === ( $check['plugins'][ $file ]['installed'] ?? null ), "$file: 1.0.0 installed before the check" );
	expect( '2.0.0' === ( $offered['new_version'] ?? null ), "$file: core's check offers 2.0.0" );
	expect( null !== $up, "$file: an upgrade step" );
	expect( '1.0.0' === ( $up['version_before'] ?? null ), "$file: 1.0.0 before the upgrade" );

	if ( 'no-package-for-wrong-key' === $scenario ) {
		expect( '' === ( $offered['package'] ?? null ), "$file: offered without a package" );
		expect( false === ( $up['ok'] ?? null ), "$file: the upgrade fails" );
		expect( 'no_package' === ( $up['error_code'] ?? null ), "$file: error no_package" );
		expect( '1.0.0' === ( $up['version_after'] ?? null ), "$file: 1.0.0 still on disk" );
		expect( false === ( $check['plugins'][ $file ]['answer']['body']['license']['valid'] ?? null ), "$file: the answer said the license is not valid" );
		continue;
	}

	$package = $offered['package'] ?? '';
	expect( 0 === strpos( $package, "$url/dl/" ) && '/' . $slug . '.zip' === substr( $package, -strlen( "/$slug.zip" ) ), "$file: the package is the server's signed link ($package)" );
	$downloads = requests_to( '#^/dl/[0-9a-f]{64}/' . preg_quote( $slug, '#' ) . '\.zip$#' );

	if ( 'refused-without-allow' === $scenario ) {
		expect( false === ( $up['ok'] ?? null ), "$file: the upgrade fails" );
		expect( 'download_failed' === ( $up['error_code'] ?? null ), "$file: error download_failed (got " . json_encode( $up['error_code'] ?? null ) . ')' );
		expect( 'A valid URL was not provided.' === ( $up['error_data'] ?? null ), "$file: WordPress's own refusal, 'A valid URL was not provided.'" );
		expect( '1.0.0' === ( $up['version_after'] ?? null ), "$file: 1.0.0 still on disk" );
		expect( 0 === count( $downloads ), "$file: no download request reached the server" );
		continue;
	}

	expect( ( 'installs-single' === $scenario ? 'single' : 'ajax' ) === ( $up['mode'] ?? null ), "$file: the upgrade mode asked for" );
	expect( true === ( $up['ok'] ?? null ), "$file: core's upgrader succeeded (errors: " . json_encode( $up['errors'] ?? null ) . ')' );
	expect( '2.0.0' === ( $up['version_after'] ?? null ), "$file: 2.0.0 on disk after the upgrade" );
	expect( true === ( $up['active_after'] ?? null ), "$file: still active after the upgrade" );
	expect( 1 === count( $downloads ), "$file: exactly one download request reached the server" );
	expect( isset( $downloads[0]['ua'] ) && 0 === strpos( $downloads[0]['ua'], 'WordPress/' ), "$file: downloaded by WordPress's HTTP client" );
}

// The "View details" popup of the WunderUpdates-style plugin (plugins_api).
expect( '2.0.0' === ( $info['info']['version'] ?? null ) && isset( $info['info']['sections']['changelog'] ), 'plugins_api shows 2.0.0 with its changelog' );
expect( ( 'no-package-for-wrong-key' === $scenario ) === ( '' === ( $info['info']['download_link'] ?? null ) ), 'plugins_api has a download link exactly when the key is right' );

// What the plugins asked, in their dialects.
$puc = requests_to( '#^/updates/selfcheck/upkeep-uri-test$#' );
expect( count( $puc ) >= 1, 'the URI plugin asked GET /updates/selfcheck/upkeep-uri-test' );
expect( isset( $puc[0] ) && '1.0.0' === ( $puc[0]['query']['installed_version'] ?? null ) && '1' === ( $puc[0]['query']['checking_for_updates'] ?? null ) && isset( $puc[0]['query']['php'] ), 'the PUC request carries installed_version=1.0.0, php, checking_for_updates=1' );
$wu = requests_to( '#^/v1/public/selfcheck/plugins/upkeep-wu-test$#' );
expect( count( $wu ) >= 1, 'the WU plugin asked GET /v1/public/selfcheck/plugins/upkeep-wu-test' );
// The check step alone (the first two requests; the upgrade step's wp_update_plugins() and
// core's check after each upgrade ask again): one request per plugin, although core saves
// the transient twice per check.
$check_paths = array_count_values( array_map( function ( $r ) {
	return $r['path'];
}, array_slice( $requests, 0, 2 ) ) );
expect( array( '/updates/selfcheck/upkeep-uri-test' => 1, '/v1/public/selfcheck/plugins/upkeep-wu-test' => 1 ) == $check_paths, 'the check step asks once per plugin (got ' . json_encode( $check_paths ) . ')' );
$want_key = 'no-package-for-wrong-key' === $scenario ? '(another key)' : '(the right key)';
expect( isset( $puc[0] ) && $want_key === ( $puc[0]['query']['license_key'] ?? null ), "the PUC request carries license_key $want_key" );
expect( isset( $wu[0] ) && $want_key === ( $wu[0]['query']['key'] ?? null ), "the WU request carries key $want_key" );
expect( isset( $puc[0]['ua'] ) && preg_match( '#^WordPress/[0-9.]+; http://wp\.test#', $puc[0]['ua'] ), 'the check is sent with the WordPress User-Agent naming the site' );
expect( 0 === count( requests_to( '#^/(?!updates/|v1/public/|dl/)#' ) ), 'no other request reached the server' );

if ( $failures ) {
	fwrite( STDERR, "selfcheck $scenario FAILED:\n  - " . implode( "\n  - ", $failures ) . "\n--- harness output\n" . file_get_contents( $out_file ) . "--- requests\n" . file_get_contents( $req_file ) );
	exit( 1 );
}
fwrite( STDERR, "selfcheck $scenario: ok " . json_encode( $timings ) . "\n" );
