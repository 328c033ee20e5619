<?php
/**
 * Plugin Name: Upkeep WunderUpdates-style Test
 * Description: Test plugin for upkeep's end-to-end test. A WunderUpdates-style update checker: it hooks `pre_set_site_transient_update_plugins` and `plugins_api` and asks upkeep in the WunderUpdates dialect (SPEC §8.2).
 * Version: 1.0.0
 * Requires at least: 5.8
 * Requires PHP: 7.4
 * Author: upkeep tests
 * License: GPL-2.0-or-later
 *
 * Server: the option `upkeep_test_url` (set by the harness), account prefix in
 * `upkeep_test_prefix`, key in `upkeep_test_key_upkeep-wu-test` or `upkeep_test_key`.
 */

defined( 'ABSPATH' ) || exit;

if ( ! class_exists( 'Upkeep_WU_Test_Updater' ) ) {
	/**
	 * What a WunderUpdates-style client does: GET {server}/v1/public/{prefix}/plugins/{slug}?key=K,
	 * answer `{"plugin_name","version","requires_at_least","requires_php","tested_up_to",
	 * "download_link"?,"last_updated","homepage","sections":{…},"license":{"valid","code"}}`.
	 */
	class Upkeep_WU_Test_Updater {
		/** @var string e.g. upkeep-wu-test/upkeep-wu-test.php */
		private $basename;
		/** @var string the folder name, which is the product slug on the server */
		private $slug;
		/** @var array|null|false the answer of this request (null: not asked yet; false: failed) */
		private $answer = null;

		public function __construct( $file ) {
			$this->basename = plugin_basename( $file );
			$this->slug     = dirname( $this->basename );
			add_filter( 'pre_set_site_transient_update_plugins', array( $this, 'inject' ) );
			add_filter( 'plugins_api', array( $this, 'plugin_information' ), 20, 3 );
		}

		/** Asks the server once per PHP request (core sets the transient twice per check). */
		private function fetch() {
			if ( null !== $this->answer ) {
				return $this->answer;
			}
			$this->answer = false;
			$base         = get_option( 'upkeep_test_url' );
			$prefix       = get_option( 'upkeep_test_prefix' );
			if ( ! $base || ! $prefix ) {
				return false;
			}
			$url = untrailingslashit( $base ) . '/v1/public/' . rawurlencode( $prefix ) . '/plugins/' . rawurlencode( $this->slug );
			$key = get_option( 'upkeep_test_key_' . $this->slug, get_option( 'upkeep_test_key', '' ) );
			if ( '' !== (string) $key ) {
				$url = add_query_arg( 'key', rawurlencode( $key ), $url );
			}
			$response = wp_remote_get(
				$url,
				array(
					'timeout' => 10,
					'headers' => array( 'Accept' => 'application/json' ),
				)
			);
			$code     = is_wp_error( $response ) ? 0 : wp_remote_retrieve_response_code( $response );
			$body     = 200 === $code ? json_decode( wp_remote_retrieve_body( $response ), true ) : null;

			// For the test's eyes only: what the server answered (core keeps no license code).
			update_option(
				'upkeep_test_last_answer_' . $this->slug,
				array(
					'url'    => preg_replace( '/([?&]key=)[^&]*/', '$1***', $url ),
					'status' => $code,
					'error'  => is_wp_error( $response ) ? $response->get_error_message() : null,
					'body'   => $body,
				),
				false
			);

			if ( is_array( $body ) && ! empty( $body['version'] ) ) {
				$this->answer = $body;
			}
			return $this->answer;
		}

		/** The installed version, from the file on disk (core's 6.1 transient may lack `checked`). */
		private function installed_version() {
			if ( ! function_exists( 'get_plugins' ) ) {
				require_once ABSPATH . 'wp-admin/includes/plugin.php';
			}
			$plugins = get_plugins();
			return isset( $plugins[ $this->basename ] ) ? $plugins[ $this->basename ]['Version'] : '0';
		}

		/** `pre_set_site_transient_update_plugins`: put our entry into `response` or `no_update`. */
		public function inject( $transient ) {
			if ( ! is_object( $transient ) ) {
				$transient = new stdClass();
			}
			$info = $this->fetch();
			if ( ! $info ) {
				return $transient;
			}
			$item = (object) array(
				'id'           => $this->basename,
				'slug'         => $this->slug,
				'plugin'       => $this->basename,
				'new_version'  => (string) $info['version'],
				'url'          => isset( $info['homepage'] ) ? (string) $info['homepage'] : '',
				'package'      => isset( $info['download_link'] ) ? (string) $info['download_link'] : '',
				'tested'       => isset( $info['tested_up_to'] ) ? (string) $info['tested_up_to'] : '',
				'requires'     => isset( $info['requires_at_least'] ) ? (string) $info['requires_at_least'] : '',
				'requires_php' => isset( $info['requires_php'] ) ? (string) $info['requires_php'] : '',
				'icons'        => array(),
				'banners'      => array(),
			);
			if ( ! isset( $transient->response ) || ! is_array( $transient->response ) ) {
				$transient->response = array();
			}
			if ( ! isset( $transient->no_update ) || ! is_array( $transient->no_update ) ) {
				$transient->no_update = array();
			}
			unset( $transient->response[ $this->basename ], $transient->no_update[ $this->basename ] );
			if ( version_compare( $item->new_version, $this->installed_version(), '>' ) ) {
				$transient->response[ $this->basename ] = $item;
			} else {
				$transient->no_update[ $this->basename ] = $item;
			}
			return $transient;
		}

		/** `plugins_api` (the "View details" popup): the plugin_information for our slug. */
		public function plugin_information( $result, $action, $args ) {
			if ( 'plugin_information' !== $action || ! isset( $args->slug ) || $args->slug !== $this->slug ) {
				return $result;
			}
			$info = $this->fetch();
			if ( ! $info ) {
				return $result;
			}
			return (object) array(
				'name'          => isset( $info['plugin_name'] ) ? (string) $info['plugin_name'] : $this->slug,
				'slug'          => $this->slug,
				'version'       => (string) $info['version'],
				'homepage'      => isset( $info['homepage'] ) ? (string) $info['homepage'] : '',
				'requires'      => isset( $info['requires_at_least'] ) ? (string) $info['requires_at_least'] : '',
				'tested'        => isset( $info['tested_up_to'] ) ? (string) $info['tested_up_to'] : '',
				'requires_php'  => isset( $info['requires_php'] ) ? (string) $info['requires_php'] : '',
				'last_updated'  => isset( $info['last_updated'] ) ? (string) $info['last_updated'] : '',
				'sections'      => isset( $info['sections'] ) && is_array( $info['sections'] ) ? $info['sections'] : array(),
				'download_link' => isset( $info['download_link'] ) ? (string) $info['download_link'] : '',
			);
		}
	}
}

new Upkeep_WU_Test_Updater( __FILE__ );
