<?php
/**
 * A stand-in for upkeep's public routes, for selfcheck.sh only: `php -S 127.0.0.1:PORT
 * router.php`. It answers the two dialects the test plugins speak with fixed documents of
 * the shapes in /work/shared/dialects (SPEC §8.2) and serves the zips from FAKE_ROOT.
 *
 *   GET /healthz                                   "ok"
 *   GET /updates/{prefix}/{slug}?installed_version=…[&license_key=K]   Plugin Update Checker
 *   GET /v1/public/{prefix}/plugins/{slug}[?key=K]                    WunderUpdates
 *   GET|HEAD /dl/{token}/{slug}.zip                a "signed" link (HMAC of the file name)
 *
 * Environment: FAKE_ROOT (holds {slug}.zip), FAKE_PREFIX, FAKE_VERSION (the version
 * offered), FAKE_KEY (a download link only for this key; empty: for anyone), FAKE_LOG (one
 * JSON line per request).
 */

$root    = getenv( 'FAKE_ROOT' );
$prefix  = getenv( 'FAKE_PREFIX' );
$version = getenv( 'FAKE_VERSION' );
$key     = (string) getenv( 'FAKE_KEY' );
$secret  = 'selfcheck-not-a-secret';
$path    = parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH );
$method  = $_SERVER['REQUEST_METHOD'];

$query = $_GET;
foreach ( array( 'key', 'license_key' ) as $k ) {
	if ( isset( $query[ $k ] ) ) {
		$query[ $k ] = $query[ $k ] === $key ? '(the right key)' : '(another key)';
	}
}
file_put_contents(
	getenv( 'FAKE_LOG' ),
	json_encode(
		array(
			'method' => $method,
			'path'   => $path,
			'query'  => (object) $query,
			'ua'     => isset( $_SERVER['HTTP_USER_AGENT'] ) ? $_SERVER['HTTP_USER_AGENT'] : null,
		),
		JSON_UNESCAPED_SLASHES
	) . "\n",
	FILE_APPEND | LOCK_EX
);

function reply_json( $status, $doc ) {
	http_response_code( $status );
	header( 'Content-Type: application/json' );
	header( 'Cache-Control: no-store' );
	echo json_encode( $doc, JSON_UNESCAPED_SLASHES );
	exit;
}

function signed_link( $slug ) {
	global $secret;
	$file = $slug . '.zip';
	return 'http://' . $_SERVER['HTTP_HOST'] . '/dl/' . hash_hmac( 'sha256', $file, $secret ) . '/' . $file;
}

function known( $p, $slug ) {
	global $prefix, $root;
	return $p === $prefix && preg_match( '/^[a-z0-9][a-z0-9._-]*$/', $slug ) && is_file( "$root/$slug.zip" );
}

$home      = 'http://' . $_SERVER['HTTP_HOST'] . '/';
$sections  = array(
	'description' => '<p>A test plugin.</p>',
	'changelog'   => '<h4>' . $version . '</h4><ul><li>Self-check release.</li></ul>',
);
$key_given = isset( $_GET['license_key'] ) ? $_GET['license_key'] : ( isset( $_GET['key'] ) ? $_GET['key'] : '' );
$allowed   = '' === $key || $key_given === $key;
$license   = array( 'valid' => $allowed, 'code' => $allowed ? 'valid' : ( '' === $key_given ? 'missing_key' : 'not_found' ) );

if ( '/healthz' === $path ) {
	echo 'ok';
	exit;
}

if ( 'GET' === $method && preg_match( '#^/updates/([^/]+)/([^/]+)$#', $path, $m ) ) {
	if ( ! known( $m[1], $m[2] ) ) {
		reply_json( 404, array( 'error' => 'not_found' ) );
	}
	$doc = array(
		'name'         => 'Test ' . $m[2],
		'slug'         => $m[2],
		'version'      => $version,
		'homepage'     => $home,
		'author'       => 'upkeep tests',
		'requires'     => '5.8',
		'tested'       => '6.1',
		'requires_php' => '7.4',
		'last_updated' => gmdate( 'Y-m-d H:i:s' ),
		'sections'     => $sections,
		'license'      => $license,
	);
	if ( $allowed ) {
		$doc['download_url'] = signed_link( $m[2] );
	}
	reply_json( 200, $doc );
}

if ( 'GET' === $method && preg_match( '#^/v1/public/([^/]+)/plugins/([^/]+)$#', $path, $m ) ) {
	if ( ! known( $m[1], $m[2] ) ) {
		reply_json( 404, array( 'status' => 404, 'error' => 'not_found' ) );
	}
	$doc = array(
		'plugin_name'       => 'Test ' . $m[2],
		'version'           => $version,
		'requires_at_least' => '5.8',
		'requires_php'      => '7.4',
		'tested_up_to'      => '6.1',
		'last_updated'      => gmdate( 'Y-m-d H:i:s' ),
		'homepage'          => $home,
		'sections'          => $sections,
		'license'           => $license,
	);
	if ( $allowed ) {
		$doc['download_link'] = signed_link( $m[2] );
	}
	reply_json( 200, $doc );
}

if ( ( 'GET' === $method || 'HEAD' === $method ) && preg_match( '#^/dl/([0-9a-f]{64})/([a-z0-9._-]+\.zip)$#', $path, $m ) ) {
	if ( ! hash_equals( hash_hmac( 'sha256', $m[2], $secret ), $m[1] ) || ! is_file( "$root/$m[2]" ) ) {
		http_response_code( 410 );
		echo "gone\n";
		exit;
	}
	header( 'Content-Type: application/zip' );
	header( 'Content-Length: ' . filesize( "$root/$m[2]" ) );
	header( 'Content-Disposition: attachment; filename="' . $m[2] . '"' );
	if ( 'GET' === $method ) {
		readfile( "$root/$m[2]" );
	}
	exit;
}

reply_json( 404, array( 'error' => 'no such route' ) );
