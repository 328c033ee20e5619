#!/usr/bin/env bash
# A real WordPress for end-to-end tests: a private MariaDB (own datadir, unix socket, no
# networking, no system service) and a private copy of Debian's WordPress, installed through
# PHP CLI. Everything lives in one temporary directory, removed on exit, also on failure.
#
#   harness.sh e2e            the update scenario against the server at $UPKEEP_URL:
#                             installs the test plugins at $WP_E2E_FROM, runs core's update
#                             check, plugins_api for upkeep-wu-test, then core's
#                             Plugin_Upgrader on each; JSON lines on stdout
#   harness.sh run CMD [ARG…] sets up, runs CMD with WP_ROOT, WP_BIN, WP_TMP exported, tears
#                             down; exits with CMD's status
#
# Environment (e2e): UPKEEP_URL (e.g. http://127.0.0.1:41234, required), UPKEEP_PREFIX
# (required), UPKEEP_KEY (optional, both plugins), UPKEEP_KEY_<SLUG> (optional, one plugin:
# slug upper-cased, `-` and `.` as `_`, e.g. UPKEEP_KEY_UPKEEP_WU_TEST), WP_E2E_FROM
# (installed version, default 1.0.0), WP_E2E_PLUGINS (slugs, default "upkeep-uri-test
# upkeep-wu-test"), WP_E2E_MODE (ajax|single, default ajax: see bin/upgrade-plugin.php).
# Always: WP_SRC (default /usr/share/wordpress), WP_HARNESS_TIMEOUT (seconds for MariaDB to
# answer, default 60), WP_KEEP=1 (keep the temporary directory, for debugging),
# WP_NO_ALLOW_MU=1 (leave out mu-plugins/upkeep-allow-test-host.php, to see WordPress refuse).
#
# stdout: JSON lines only (each with a "step"); progress and diagnostics go to stderr.
# Exit status: 0 when every step ran (the caller judges the results), 77 when a needed
# program is missing (the caller may skip), anything else: the harness failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATH=$PATH:/usr/sbin:/sbin   # mariadbd lives in /usr/sbin, often not on a user's PATH
WP_SRC=${WP_SRC:-/usr/share/wordpress}
export WP_SRC
DB_TIMEOUT=${WP_HARNESS_TIMEOUT:-60}

now_ms() { date +%s%3N; }
T0=$(now_ms)
log() { printf '[wp-harness +%sms] %s\n' "$(($(now_ms) - T0))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

TMP=''
DB_PID=''
CHILD=''     # the command or driver running now (killed on exit, so a signal ends it too)
TIMINGS=''   # "name ms" lines

cleanup() {
  local rc=$? t
  trap - EXIT INT TERM
  t=$(now_ms)
  if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
    kill "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  if [[ -n $DB_PID ]] && kill -0 "$DB_PID" 2>/dev/null; then
    kill "$DB_PID" 2>/dev/null || true
    # mariadbd shuts down cleanly on SIGTERM; give it a deadline, then SIGKILL.
    local deadline=$((SECONDS + 20))
    while kill -0 "$DB_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -0 "$DB_PID" 2>/dev/null && kill -9 "$DB_PID" 2>/dev/null || true
    wait "$DB_PID" 2>/dev/null || true
  fi
  if [[ -n $TMP && -d $TMP ]]; then
    if ((rc != 0)); then
      # WordPress 6.1 on PHP 8.2 logs ~20 deprecations of its own per request: left out.
      for f in "$TMP/debug.log" "$TMP/mariadb.err"; do
        [[ -s $f ]] && { echo "--- tail of $f (without PHP Deprecated)" >&2; grep -v 'PHP Deprecated' "$f" | tail -n 40 >&2; }
      done
    fi
    if [[ ${WP_KEEP:-} == 1 ]]; then
      log "kept $TMP (WP_KEEP=1); nothing is running in it any more"
    else
      rm -rf "$TMP"
    fi
    log "teardown: $(($(now_ms) - t)) ms (exit status $rc)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs "$@" in the background and waits for it: bash runs a trap only once the foreground
# command has ended, but interrupts `wait` at once, so SIGTERM/SIGINT tear down right away.
# (The command's stdin is /dev/null.)
run_child() {
  local rc=0
  "$@" </dev/null &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=''
  return "$rc"
}

# Runs "$@" and records how long it took under the name $1 (shown at the end).
timed() {
  local name=$1 t
  shift
  t=$(now_ms)
  "$@"
  TIMINGS+="$name $(($(now_ms) - t))"$'\n'
  log "$name: $(($(now_ms) - t)) ms"
}

require_programs() {
  local missing=()
  for p in php mariadb-install-db mariadbd mariadb-admin mariadb; do
    command -v "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [[ -f $WP_SRC/wp-settings.php ]] || missing+=("WordPress in $WP_SRC (Debian package wordpress)")
  php -r 'exit(extension_loaded("mysqli") ? 0 : 1);' 2>/dev/null || missing+=("php mysqli (php-mysql)")
  if ((${#missing[@]})); then
    log "missing: ${missing[*]} (apt-get install mariadb-server php-cli php-mysql wordpress)"
    exit 77
  fi
}

start_mariadb() {
  local datadir=$TMP/mariadb sock=$TMP/mysqld.sock user=()
  ((${#sock} < 100)) || die "socket path $sock is too long for a unix socket; set a shorter TMPDIR"
  # mariadbd refuses to run as root unless told which user to be.
  [[ $(id -u) -eq 0 ]] && user=(--user=root)
  mariadb-install-db --no-defaults --datadir="$datadir" --auth-root-authentication-method=normal \
    --skip-test-db "${user[@]}" >"$TMP/mariadb-install.log" 2>&1 \
    || { cat "$TMP/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
  mariadbd --no-defaults --datadir="$datadir" --socket="$sock" --skip-networking \
    --pid-file="$TMP/mariadb.pid" --log-error="$TMP/mariadb.err" "${user[@]}" \
    --innodb-buffer-pool-size=32M --innodb-log-file-size=16M --skip-log-bin \
    </dev/null >/dev/null 2>&1 &
  DB_PID=$!
  local deadline=$((SECONDS + DB_TIMEOUT))
  until mariadb-admin --no-defaults --socket="$sock" -uroot ping >/dev/null 2>&1; do
    kill -0 "$DB_PID" 2>/dev/null || die "mariadbd exited during start"
    ((SECONDS < deadline)) || die "mariadbd did not answer within ${DB_TIMEOUT}s"
    sleep 0.05
  done
  mariadb --no-defaults --socket="$sock" -uroot -e \
    "CREATE DATABASE wordpress CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
     CREATE USER 'wordpress'@'localhost' IDENTIFIED BY 'wordpress';
     GRANT ALL ON wordpress.* TO 'wordpress'@'localhost';"
  DB_SOCK=$sock
}

# A private WordPress: the top-level PHP files are copied (wp-load.php defines ABSPATH from
# its own __DIR__, and PHP resolves symlinks in __FILE__: a symlinked wp-load.php would load
# Debian's wp-config.php, which reads /etc/wordpress/config-<HTTP_HOST>.php), wp-admin and
# wp-includes are symlinks to the read-only originals (nothing in a plugin update writes
# there; Plugin_Upgrader's .maintenance file goes to ABSPATH, which is ours), wp-content is
# private (plugins copied, each theme a symlink), and our wp-config.php replaces Debian's.
make_wordpress() {
  WP_ROOT=$TMP/wordpress
  mkdir -p "$WP_ROOT/wp-content/themes"
  local f
  for f in "$WP_SRC"/*.php; do
    [[ ${f##*/} == wp-config.php ]] || cp "$f" "$WP_ROOT/"
  done
  ln -s "$WP_SRC/wp-admin" "$WP_ROOT/wp-admin"
  ln -s "$WP_SRC/wp-includes" "$WP_ROOT/wp-includes"
  cp -a "$WP_SRC/wp-content/plugins" "$WP_ROOT/wp-content/"
  for f in "$WP_SRC"/wp-content/themes/*/; do
    ln -s "${f%/}" "$WP_ROOT/wp-content/themes/"
  done
  mkdir -p "$WP_ROOT/wp-content/mu-plugins" "$WP_ROOT/wp-content/upgrade" "$TMP/tmp"
  cp "$HERE/mu-plugins/upkeep-offline.php" "$WP_ROOT/wp-content/mu-plugins/"
  [[ ${WP_NO_ALLOW_MU:-} == 1 ]] || cp "$HERE/mu-plugins/upkeep-allow-test-host.php" "$WP_ROOT/wp-content/mu-plugins/"
  local salts='' k
  for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
    salts+="define( '$k', '$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')' );"$'\n'
  done
  cat >"$WP_ROOT/wp-config.php" <<PHP
<?php
// Written by tests/wordpress/harness.sh: a private test site, not Debian's configuration.
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wordpress' );
define( 'DB_PASSWORD', 'wordpress' );
define( 'DB_HOST', 'localhost:$DB_SOCK' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
\$table_prefix = 'wp_';
$salts
define( 'WP_HOME', 'http://wp.test' );
define( 'WP_SITEURL', 'http://wp.test' );
define( 'WP_CONTENT_DIR', __DIR__ . '/wp-content' );
define( 'WP_CONTENT_URL', 'http://wp.test/wp-content' );
define( 'WP_TEMP_DIR', '$TMP/tmp/' );
define( 'FS_METHOD', 'direct' );          // write plugin files directly, never ask for FTP credentials
define( 'DISABLE_WP_CRON', true );        // no loopback HTTP request to spawn cron
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_AUTO_UPDATE_CORE', false );
define( 'WP_DEBUG', true );               // notices go to the log, shown when the harness fails
define( 'WP_DEBUG_DISPLAY', false );
define( 'WP_DEBUG_LOG', '$TMP/debug.log' );
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
PHP
}

# Runs a driver script; its one JSON line goes to stdout.
driver() { run_child php "$HERE/bin/$1" "${@:2}"; }

setup() {
  require_programs
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-wp.XXXXXX")
  log "temporary directory $TMP"
  timed mariadb_start start_mariadb
  timed wp_copy make_wordpress
  export WP_ROOT WP_TMP=$TMP WP_BIN=$HERE/bin
  timed wp_install driver install.php >"$TMP/install.json"
  log "installed: $(cat "$TMP/install.json")"
}

timings_json() {
  local first=1 name ms
  printf '{"step":"timings","ms":{'
  while read -r name ms; do
    [[ -n $name ]] || continue
    ((first)) || printf ','
    first=0
    printf '"%s":%s' "$name" "$ms"
  done <<<"$TIMINGS"
  printf '}}\n'
}

cmd_e2e() {
  : "${UPKEEP_URL:?UPKEEP_URL is the server to test, e.g. http://127.0.0.1:41234}"
  : "${UPKEEP_PREFIX:?UPKEEP_PREFIX is the account prefix}"
  local from=${WP_E2E_FROM:-1.0.0} mode=${WP_E2E_MODE:-ajax}
  local -a slugs files conf
  read -r -a slugs <<<"${WP_E2E_PLUGINS:-upkeep-uri-test upkeep-wu-test}"
  setup

  conf=("url=${UPKEEP_URL%/}" "prefix=$UPKEEP_PREFIX" "key=${UPKEEP_KEY:-}")
  local slug var
  for slug in "${slugs[@]}"; do
    var=UPKEEP_KEY_$(tr 'a-z.-' 'A-Z__' <<<"$slug")
    [[ -n ${!var:-} ]] && conf+=("key.$slug=${!var}")
    driver build-plugin.php "$slug" "$from" "$WP_ROOT/wp-content/plugins/$slug" >/dev/null
    files+=("$slug/$slug.php")
  done
  driver configure.php "${conf[@]}" >/dev/null
  driver activate.php "${files[@]}"
  timed update_check driver check-updates.php "${files[@]}"
  # The "View details" popup: only the WunderUpdates-style plugin answers plugins_api.
  [[ " ${slugs[*]} " == *" upkeep-wu-test "* ]] && driver plugin-info.php upkeep-wu-test
  local file
  for file in "${files[@]}"; do
    timed "upgrade:${file%%/*}" driver upgrade-plugin.php --mode="$mode" "$file"
  done
  timings_json
}

cmd_run() {
  (($#)) || die "usage: harness.sh run CMD [ARG…]"
  setup
  local rc=0
  run_child "$@" || rc=$?
  timings_json >&2
  return "$rc"
}

case ${1:-} in
  e2e) shift; cmd_e2e "$@" ;;
  run) shift; [[ ${1:-} == -- ]] && shift; cmd_run "$@" ;;
  *) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac
