<?php
/**
 * Points the test plugins (and the test mu-plugins) at a server.
 *
 *   php configure.php url=http://127.0.0.1:PORT prefix=PREFIX [key=K] [key.SLUG=K]
 *
 * url → option upkeep_test_url (also the one host:port the mu-plugins let through),
 * prefix → upkeep_test_prefix, key → upkeep_test_key (both plugins), key.SLUG →
 * upkeep_test_key_SLUG (that plugin only; wins over key). An empty value deletes the option.
 */

require __DIR__ . '/bootstrap.php';

$set = array();
foreach ( array_slice( $argv, 1 ) as $arg ) {
	if ( ! preg_match( '/^(url|prefix|key|key\.[a-z0-9][a-z0-9._-]*)=(.*)$/s', $arg, $m ) ) {
		fwrite( STDERR, "usage: configure.php url=… prefix=… [key=…] [key.SLUG=…]; not understood: $arg\n" );
		exit( 2 );
	}
	$option = 'upkeep_test_' . str_replace( '.', '_', $m[1] );
	if ( '' === $m[2] ) {
		delete_option( $option );
	} else {
		update_option( $option, $m[2] );
	}
	$set[ $m[1] ] = ( 'key' === substr( $m[1], 0, 3 ) && '' !== $m[2] ) ? '***' : $m[2];
}
upkeep_print_json( array( 'step' => 'configure', 'set' => (object) $set ) );
