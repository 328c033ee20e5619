<?php
/**
 * Builds a test plugin at a given version, from tests/wordpress/plugins/SLUG.
 *
 *   php build-plugin.php SLUG VERSION OUT
 *
 * The main file's `Version:` header becomes VERSION. OUT ending in `.zip`: a zip whose one
 * top-level folder is SLUG/ (what WordPress's upgrader expects, and what upkeep reads); any
 * other OUT: the plugin folder itself is written there (to install a version directly).
 * Zips are made with PclZip from WordPress's own sources (WP_SRC, default
 * /usr/share/wordpress): this PHP has no ZipArchive, and needs no `zip` program.
 * Prints {"step":"build","slug","version","out","bytes"?}.
 */

if ( 'cli' !== PHP_SAPI || 4 !== $argc ) {
	fwrite( STDERR, "usage: build-plugin.php SLUG VERSION OUT(.zip|dir)\n" );
	exit( 2 );
}
list( , $slug, $version, $out ) = $argv;
if ( ! preg_match( '/^[a-z0-9][a-z0-9._-]*$/', $slug ) || ! preg_match( '/^[0-9A-Za-z.+-]+$/', $version ) ) {
	fwrite( STDERR, "bad SLUG or VERSION\n" );
	exit( 2 );
}
$src = dirname( __DIR__ ) . '/plugins/' . $slug;
if ( ! is_file( "$src/$slug.php" ) ) {
	fwrite( STDERR, "no test plugin $src/$slug.php\n" );
	exit( 2 );
}

/** Copies $from to $to recursively; the main file gets the new Version header. */
function upkeep_copy_plugin( $from, $to, $main, $version ) {
	if ( ! is_dir( $to ) && ! mkdir( $to, 0755, true ) ) {
		throw new RuntimeException( "cannot create $to" );
	}
	foreach ( scandir( $from ) as $name ) {
		if ( '.' === $name || '..' === $name ) {
			continue;
		}
		if ( is_dir( "$from/$name" ) ) {
			upkeep_copy_plugin( "$from/$name", "$to/$name", null, $version );
			continue;
		}
		$text = file_get_contents( "$from/$name" );
		if ( $name === $main ) {
			$text = preg_replace( '/^([ \t\/*#@]*Version:[ \t]*).*$/mi', '${1}' . $version, $text, 1, $count );
			if ( 1 !== $count ) {
				throw new RuntimeException( "no Version header in $from/$name" );
			}
		}
		file_put_contents( "$to/$name", $text );
	}
}

if ( '.zip' !== substr( $out, -4 ) ) {
	if ( file_exists( $out ) ) {
		fwrite( STDERR, "$out exists\n" );
		exit( 1 );
	}
	upkeep_copy_plugin( $src, $out, "$slug.php", $version );
	echo json_encode( array( 'step' => 'build', 'slug' => $slug, 'version' => $version, 'out' => $out ), JSON_UNESCAPED_SLASHES ), "\n";
	exit( 0 );
}

$stage = sys_get_temp_dir() . '/upkeep-build-' . bin2hex( random_bytes( 6 ) );
try {
	upkeep_copy_plugin( $src, "$stage/$slug", "$slug.php", $version );
	define( 'PCLZIP_TEMPORARY_DIR', $stage . '/' );
	require_once ( getenv( 'WP_SRC' ) ? getenv( 'WP_SRC' ) : '/usr/share/wordpress' ) . '/wp-admin/includes/class-pclzip.php';
	@unlink( $out );
	$zip = new PclZip( $out );
	if ( 0 === $zip->create( "$stage/$slug", PCLZIP_OPT_REMOVE_PATH, $stage ) ) {
		throw new RuntimeException( 'PclZip: ' . $zip->errorInfo( true ) );
	}
} finally {
	// Remove the staging folder whatever happened.
	$it = new RecursiveIteratorIterator( new RecursiveDirectoryIterator( $stage, FilesystemIterator::SKIP_DOTS ), RecursiveIteratorIterator::CHILD_FIRST );
	foreach ( is_dir( $stage ) ? $it : array() as $f ) {
		$f->isDir() ? rmdir( $f->getPathname() ) : unlink( $f->getPathname() );
	}
	is_dir( $stage ) && rmdir( $stage );
}
clearstatcache();
echo json_encode( array( 'step' => 'build', 'slug' => $slug, 'version' => $version, 'out' => $out, 'bytes' => filesize( $out ) ), JSON_UNESCAPED_SLASHES ), "\n";
