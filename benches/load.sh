#!/usr/bin/env bash
# The load benchmark: upkeep's routes against a bare hyper hello-world, on this machine.
#
#   benches/load.sh                      # 100,000 tokens, 10 s per run
#   TOKENS=1000000 benches/load.sh       # a million tokens
#   DURATION=5 benches/load.sh           # shorter runs
#
# Builds release (upkeep, examples hello and prefill), fills a temporary data directory
# with TOKENS account tokens (and 100 operator tokens), starts upkeep and the hello-world
# on 127.0.0.1, and runs wrk (CONNECTIONS=32 connections, THREADS=2 threads, DURATION
# seconds each, --latency) in this order, so machine noise hits both sides alike:
#
#   hello, GET /v1/account (RUST_LOG=warn), hello, GET /_/token?limit=100, hello,
#   POST /v1/account/tokens (durable), hello,
#   GET /v1/account in the default configuration (RUST_LOG unset, text log: one request
#   line per request; stderr to /dev/null), hello,
#   GET /_/token on a second store holding 10 operator tokens (RUST_LOG=warn), hello
#
# Each route's ratio is its req/s over the mean of the two hello runs beside it. The
# headline figure is GET /v1/account in the default configuration (issue 14: ≥ 0.85×).
# The other upkeep runs use RUST_LOG=warn,upkeep::listening=info (no per-request line).
# Also reported: start-up time (exec of `upkeep serve` to its listening line) with TOKENS
# tokens, both loading index.snapshot (after a clean stop: the measured server) and
# scanning the store (the first start after the fill, as after a crash), and upkeep's
# resident memory (VmRSS) after each start and after the load.
#
# Traffic goes to 127.0.0.1 only and every run is bounded in time. Everything started
# here is stopped on exit and the temporary directory is deleted. Needs cargo and wrk
# (installed with apt-get when missing and running as root), curl for the sanity checks.
set -euo pipefail
cd "$(dirname "$0")/.."

TOKENS=${TOKENS:-100000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

log() { printf '%s\n' "load.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- tools -----------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing wrk (apt-get)"
    apt-get update >/dev/null && apt-get install -y wrk >/dev/null
  else
    die "wrk is needed (Debian/Ubuntu: apt-get install wrk)"
  fi
fi
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"

log "building release binaries"
cargo build --release --bin upkeep --example hello --example prefill >&2
# What was built (taken now: the tree may change while the load runs).
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
git status --porcelain -- src 2>/dev/null | grep -q . && REV+=" + uncommitted changes in src/" || true
UPKEEP=$TARGET_DIR/release/upkeep
HELLO=$TARGET_DIR/release/examples/hello
PREFILL=$TARGET_DIR/release/examples/prefill

# ---- cleanup ---------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-load.XXXXXX")
DATA=$WORK/data
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers ---------------------------------------------------------------------------
now_ns() { date +%s%N; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Waits until 127.0.0.1:$1 answers $2 (a path) with 200.
wait_http() {
  local i
  for i in $(seq 1 600); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$1$2" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

UPKEEP_PID=
UPKEEP_PORT=
UPKEEP_START_MS=
# Starts upkeep on a free port with RUST_LOG=$1 ("-": unset, and the default log format
# instead of JSON), stderr to $2 (a file or /dev/null; with /dev/null, on port $3).
# Sets UPKEEP_PID, UPKEEP_PORT and, when the log is a file, UPKEEP_START_MS.
start_upkeep() {
  local rust_log=$1 err=$2 port=${3:-0} started line stamp listened
  local env_args=(RUST_LOG="$rust_log") format_args=(--log-format json)
  if [ "$rust_log" = - ]; then
    env_args=(-u RUST_LOG)
    format_args=()
  fi
  started=$(now_ns)
  # The durable-creation run makes ~100k tokens in one account: lift the per-account
  # quota (default 1,000) so it measures writes, not 409s.
  env "${env_args[@]}" UPKEEP_MAX_TOKENS_PER_ACCOUNT=100000000 \
    "$UPKEEP" --data "$DATA" "${format_args[@]}" serve \
    --listen "127.0.0.1:$port" 2>"$err" &
  UPKEEP_PID=$!
  PIDS+=("$UPKEEP_PID")
  if [ "$err" = /dev/null ]; then
    UPKEEP_PORT=$port
    wait_http "$port" /healthz || die "upkeep did not answer on port $port"
    return
  fi
  line=
  for _ in $(seq 1 6000); do
    line=$(grep -m1 '"target":"upkeep::listening"' "$err" || true)
    [ -n "$line" ] && break
    kill -0 "$UPKEEP_PID" 2>/dev/null || { cat "$err" >&2; die "upkeep exited at start"; }
    sleep 0.01
  done
  [ -n "$line" ] || die "upkeep printed no listening line within 60 s"
  UPKEEP_PORT=$(sed -E 's/.*"listen":"127\.0\.0\.1:([0-9]+)".*/\1/' <<<"$line")
  stamp=$(sed -E 's/.*"timestamp":"([^"]+)".*/\1/' <<<"$line")
  listened=$(date -d "$stamp" +%s%N)
  UPKEEP_START_MS=$(( (listened - started) / 1000000 ))
}

stop_upkeep() {
  kill "$UPKEEP_PID"
  wait "$UPKEEP_PID" 2>/dev/null || true
}

# Runs wrk; prints "req/s p50_ms p99_ms non2xx errors". Arguments: duration, url, extra
# wrk arguments. The raw output is kept in $WORK/wrk.N.txt (and echoed on failure).
RUN_N=0
run_wrk() {
  local duration=$1 url=$2
  shift 2
  RUN_N=$((RUN_N + 1))
  local out=$WORK/wrk.$RUN_N.txt
  timeout $((duration + 30)) wrk --latency -t "$THREADS" -c "$CONNECTIONS" -d "${duration}s" \
    "$@" "$url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed on $url"; }
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000;
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0;
      if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000;
      return v + 0;
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /Socket errors:/ { errs = $0; sub(/.*Socket errors: */, "", errs); gsub(/ /, "", errs) }
    END {
      if (rps == "") exit 1;
      printf "%.0f %.3f %.3f %d %s\n", rps, p50, p99, bad + 0, (errs == "" ? "-" : errs)
    }' "$out" || { cat "$out" >&2; die "could not parse wrk output"; }
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- fill ------------------------------------------------------------------------------
log "pre-filling $TOKENS tokens in $DATA"
fill_started=$(now_ns)
"$PREFILL" "$DATA" "$TOKENS" >"$WORK/secrets"
FILL_S=$(awk -v ns=$(( $(now_ns) - fill_started )) 'BEGIN { printf "%.1f", ns / 1e9 }')
# shellcheck disable=SC1091
. "$WORK/secrets"
[ -n "${ACCOUNT_TOKEN:-}" ] && [ -n "${OPERATOR_TOKEN:-}" ] || die "prefill printed no tokens"
DB_SIZE=$(du -sh "$DATA" | cut -f1)
# A second store for GET /_/token as issue 10 measures it: 10 operator tokens in all.
SMALL=$WORK/small
"$PREFILL" "$SMALL" 10 --operators 10 >"$WORK/small.secrets" 2>/dev/null
SMALL_OPERATOR_TOKEN=$(sed -n 's/^OPERATOR_TOKEN=//p' "$WORK/small.secrets")
[ -n "$SMALL_OPERATOR_TOKEN" ] || die "prefill printed no operator token for the small store"

# ---- servers ---------------------------------------------------------------------------
QUIET=warn,upkeep::listening=info
# The first start after the fill builds the token index by scanning the store (as after a
# crash); its clean stop saves index.snapshot, which the measured start loads.
start_upkeep "$QUIET" "$WORK/upkeep.log"
SCAN_START_MS=$UPKEEP_START_MS
sleep 1
RSS_SCAN=$(rss_kb "$UPKEEP_PID")
log "scanning start: listening after ${SCAN_START_MS} ms, VmRSS ${RSS_SCAN} kB"
stop_upkeep
[ -f "$DATA/index.snapshot" ] || die "the clean stop saved no index.snapshot"
start_upkeep "$QUIET" "$WORK/upkeep.log"
START_MS=$UPKEEP_START_MS
sleep 1
RSS_START=$(rss_kb "$UPKEEP_PID")
log "upkeep listening on 127.0.0.1:$UPKEEP_PORT after ${START_MS} ms, VmRSS ${RSS_START} kB"

"$HELLO" 0 >"$WORK/hello.log" 2>&1 &
PIDS+=("$!")
HELLO_PORT=
for _ in $(seq 1 600); do
  HELLO_PORT=$(sed -nE 's/^hello listening on 127\.0\.0\.1:([0-9]+)$/\1/p' "$WORK/hello.log")
  [ -n "$HELLO_PORT" ] && break
  sleep 0.1
done
[ -n "$HELLO_PORT" ] && wait_http "$HELLO_PORT" / || die "hello did not start"

UP=http://127.0.0.1:$UPKEEP_PORT
HELLO_URL=http://127.0.0.1:$HELLO_PORT/

# POST bodies with a unique token name per request: run id, wrk thread, counter.
RUN_ID=r$(date +%s)
cat >"$WORK/create.lua" <<EOF
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil,
    string.format('{"name":"$RUN_ID-%d-%d","expires":-1}', tid, n))
end
EOF

# Sanity: every route answers 200 before we measure it.
check() {
  local code
  code=$(curl -s -o "$WORK/check.body" -w '%{http_code}' "$@")
  [ "$code" = 200 ] || { cat "$WORK/check.body" >&2; die "expected 200 from: $*, got $code"; }
}
check -H "x-api-key: $ACCOUNT_TOKEN" "$UP/v1/account"
check -H "Authorization: Bearer $OPERATOR_TOKEN" "$UP/_/token?limit=100"
check -X POST -H "x-api-key: $ACCOUNT_TOKEN" -d '{"name":"sanity-check","expires":-1}' \
  "$UP/v1/account/tokens"

ACCOUNT_ARGS=(-H "x-api-key: $ACCOUNT_TOKEN")
OPERATOR_ARGS=(-H "Authorization: Bearer $OPERATOR_TOKEN")
CREATE_ARGS=(-H "x-api-key: $ACCOUNT_TOKEN" -s "$WORK/create.lua")

log "warming up (${WARMUP} s each)"
run_wrk "$WARMUP" "$HELLO_URL" >/dev/null
run_wrk "$WARMUP" "$UP/v1/account" "${ACCOUNT_ARGS[@]}" >/dev/null

RESULTS=()   # "label|req/s|p50|p99|non2xx|errors"
measure() {  # label, url, wrk args...
  local label=$1 url=$2 r
  shift 2
  log "measuring $label (${DURATION} s)"
  r=$(run_wrk "$DURATION" "$url" "$@")
  RESULTS+=("$label|${r// /|}")
}

measure hello "$HELLO_URL"
measure "GET /v1/account" "$UP/v1/account" "${ACCOUNT_ARGS[@]}"
measure hello "$HELLO_URL"
measure "GET /_/token?limit=100" "$UP/_/token?limit=100" "${OPERATOR_ARGS[@]}"
measure hello "$HELLO_URL"
measure "POST /v1/account/tokens (durable)" "$UP/v1/account/tokens" "${CREATE_ARGS[@]}"
measure hello "$HELLO_URL"
RSS_AFTER=$(rss_kb "$UPKEEP_PID")

# The default configuration (issue 14's headline): RUST_LOG unset and the default (text)
# log format, so every request is logged; the log goes to /dev/null.
port=$UPKEEP_PORT
stop_upkeep
start_upkeep - /dev/null "$port"
run_wrk "$WARMUP" "$UP/v1/account" "${ACCOUNT_ARGS[@]}" >/dev/null
measure "GET /v1/account, default config (request log on)" "$UP/v1/account" "${ACCOUNT_ARGS[@]}"
measure hello "$HELLO_URL"
RSS_AFTER_LOG=$(rss_kb "$UPKEEP_PID")
stop_upkeep

# GET /_/token on a store holding 10 operator tokens (the whole list is one page).
DATA=$SMALL start_upkeep "$QUIET" /dev/null "$port"
check -H "Authorization: Bearer $SMALL_OPERATOR_TOKEN" "$UP/_/token"
run_wrk "$WARMUP" "$UP/_/token" -H "Authorization: Bearer $SMALL_OPERATOR_TOKEN" >/dev/null
measure "GET /_/token (10 operator tokens)" "$UP/_/token" -H "Authorization: Bearer $SMALL_OPERATOR_TOKEN"
measure hello "$HELLO_URL"
stop_upkeep

# ---- report ----------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

echo
echo "machine: $(nproc) cores, ${CPU:-unknown CPU}, $(uname -sr); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "upkeep: $REV (at build); TOKENS=$TOKENS ($DB_SIZE on disk, filled in ${FILL_S} s)"
echo "wrk --latency -t $THREADS -c $CONNECTIONS -d ${DURATION}s, 127.0.0.1; load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "start-up (exec to listening line): ${START_MS} ms from index.snapshot (after a clean stop), ${SCAN_START_MS} ms scanning the store (after a crash)"
echo "VmRSS after start: $((RSS_START / 1024)) MiB ($((RSS_SCAN / 1024)) MiB after a scanning start), after load: $((RSS_AFTER / 1024)) MiB (logging run: $((RSS_AFTER_LOG / 1024)) MiB)"
# The ratio of the run labelled $1 (to the mean of the hello runs beside it).
ratio_of() {
  local i n=${#RESULTS[@]} label rps before after
  for ((i = 1; i < n - 1; i++)); do
    IFS='|' read -r label rps _ <<<"${RESULTS[$i]}"
    [ "$label" = "$1" ] || continue
    IFS='|' read -r _ before _ <<<"${RESULTS[$((i - 1))]}"
    IFS='|' read -r _ after _ <<<"${RESULTS[$((i + 1))]}"
    awk -v r="$rps" -v a="$before" -v b="$after" 'BEGIN { printf "%.3f", r / ((a + b) / 2) }'
    return
  done
  echo "?"
}
echo
echo "**headline: GET /v1/account in the default configuration (request log on): $(ratio_of "GET /v1/account, default config (request log on)")× hello** (RUST_LOG=warn: $(ratio_of "GET /v1/account")×)"
echo
echo "| run | req/s | p50 ms | p99 ms | vs hello beside it |"
echo "|---|---:|---:|---:|---:|"
n=${#RESULTS[@]}
for ((i = 0; i < n; i++)); do
  IFS='|' read -r label rps p50 p99 bad errs <<<"${RESULTS[$i]}"
  ratio=
  if [ "$label" != hello ]; then
    IFS='|' read -r _ before _ <<<"${RESULTS[$((i - 1))]}"
    IFS='|' read -r _ after _ <<<"${RESULTS[$((i + 1))]}"
    ratio=$(awk -v r="$rps" -v a="$before" -v b="$after" 'BEGIN { printf "%.3f", r / ((a + b) / 2) }')
    ratio="${ratio}×"
  fi
  note=
  [ "$bad" != 0 ] && note+=" **$bad non-2xx**"
  [ "$errs" != - ] && note+=" (socket errors: $errs)"
  printf '| %s%s | %s | %s | %s | %s |\n' "$label" "$note" "$rps" "$p50" "$p99" "$ratio"
done
