#!/usr/bin/env bash
# Development self-check of the WordPress harness, without upkeep: a throwaway
# `php -S 127.0.0.1:<free port> selfcheck/router.php` stands in for upkeep's public routes
# (fixed answers of the documented shapes, and the zips), and harness.sh e2e runs against it.
#
#   1. key right:           core's check offers 2.0.0 of both plugins with a package link,
#                           Plugin_Upgrader downloads it and 2.0.0 is on disk (and active);
#                           once as the Plugins screen's "Update now" does it (bulk_upgrade),
#                           once as update.php does (upgrade(), then activate again)
#   2. without the allow    WordPress refuses the loopback/odd-port download: 1.0.0 stays,
#      mu-plugin:           and the server never sees a download request
#   3. wrong key:           2.0.0 is offered without a package; the upgrade fails, 1.0.0 stays
#
# The real test drives upkeep itself instead of php -S (see README.md). Exit 0: all passed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
now_ms() { date +%s%3N; }
T0=$(now_ms)
log() { printf '[selfcheck +%sms] %s\n' "$(($(now_ms) - T0))" "$*" >&2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-wp-selfcheck.XXXXXX")
SRV_PID=''
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $SRV_PID ]]; then kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; fi
  if ((rc != 0)) && [[ -s $TMP/server.err ]]; then echo "--- php -S stderr" >&2; tail -n 20 "$TMP/server.err" >&2; fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$TMP/site"
for slug in upkeep-uri-test upkeep-wu-test; do
  php "$HERE/bin/build-plugin.php" "$slug" 2.0.0 "$TMP/site/$slug.zip" >/dev/null
done

free_port() {
  php -r '$s = stream_socket_server("tcp://127.0.0.1:0", $e, $m) or exit(1);
          $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);'
}

# Start the fake server on a free port; retry if another process took the port meanwhile.
PORT=''
for attempt in 1 2 3 4 5; do
  port=$(free_port)
  FAKE_ROOT=$TMP/site FAKE_PREFIX=selfcheck FAKE_VERSION=2.0.0 FAKE_KEY=right-key \
    FAKE_LOG=$TMP/requests.jsonl php -S "127.0.0.1:$port" "$HERE/selfcheck/router.php" \
    </dev/null >/dev/null 2>"$TMP/server.err" &
  SRV_PID=$!
  deadline=$((SECONDS + 10))
  while kill -0 "$SRV_PID" 2>/dev/null && ((SECONDS < deadline)); do
    if php -r 'exit(@file_get_contents($argv[1]) === "ok" ? 0 : 1);' "http://127.0.0.1:$port/healthz"; then
      PORT=$port
      break 2
    fi
    sleep 0.05
  done
  kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=''
  log "php -S on port $port did not come up (attempt $attempt)"
done
[[ -n $PORT ]] || { log "could not start php -S"; exit 1; }
URL=http://127.0.0.1:$PORT
log "fake upkeep at $URL"

# scenario NAME [ENV=VALUE…]: runs harness.sh e2e against the fake server, then checks the
# outcome with selfcheck/assert.php NAME.
scenario() {
  local name=$1
  shift
  : >"$TMP/requests.jsonl"
  log "scenario $name"
  env UPKEEP_URL="$URL" UPKEEP_PREFIX=selfcheck "$@" "$HERE/harness.sh" e2e >"$TMP/$name.jsonl"
  php "$HERE/selfcheck/assert.php" "$name" "$URL" "$TMP/$name.jsonl" "$TMP/requests.jsonl"
}

scenario installs UPKEEP_KEY=right-key
scenario installs-single UPKEEP_KEY=right-key WP_E2E_MODE=single
scenario refused-without-allow UPKEEP_KEY=right-key WP_NO_ALLOW_MU=1
scenario no-package-for-wrong-key UPKEEP_KEY=wrong-key
log "all scenarios passed"
