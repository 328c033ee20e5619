#!/usr/bin/env bash
# Requests during an online backup (issue 10): does a backup of a big store make requests
# wait, on a server confined to one core?
#
#   benches/backup-under-load.sh                 # 300,000 tokens
#   TOKENS=100000 RATE=200 benches/backup-under-load.sh
#
# Builds release (upkeep, examples prefill and backup-load), fills a temporary data
# directory with TOKENS account tokens (10 per account, and 100 operator tokens), starts
# `upkeep serve` under `taskset -c 0` (so tokio sees one core: one worker thread; its
# blocking threads and sled's threads share that core too), then runs the load client
# `backup-load` under `taskset -c 1`. The client paces GET /healthz, GET /v1/account
# (x-api-key) and POST /v1/account/tokens (durable, a unique name each) on CONNECTIONS
# keep-alive connections per route, each sending RATE requests per second: first IDLE
# seconds with nothing else going on, then while `upkeep --data DIR backup FILE` runs
# (through the admin socket of the running server) until that process exits. It prints
# p50/p99/max per route for both phases, and the backup's duration and size.
#
# The targets (issue 10): during the backup, p99 under 50 ms for /healthz and
# GET /v1/account, and no token creation waiting more than 250 ms.
#
# Traffic goes to 127.0.0.1 only. Everything started here is stopped on exit and the
# temporary directory is deleted.
set -euo pipefail
cd "$(dirname "$0")/.."

TOKENS=${TOKENS:-300000}
RATE=${RATE:-100}
CONNECTIONS=${CONNECTIONS:-2}
IDLE=${IDLE:-3}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

log() { printf '%s\n' "backup-under-load.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v taskset >/dev/null || die "taskset is needed (util-linux)"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 cores; the load client shares core 0 with the server"

log "building release binaries"
cargo build --release --bin upkeep --example prefill --example backup-load >&2
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
git status --porcelain -- src 2>/dev/null | grep -q . && REV+=" + uncommitted changes in src/" || true
UPKEEP=$TARGET_DIR/release/upkeep
PREFILL=$TARGET_DIR/release/examples/prefill
CLIENT=$TARGET_DIR/release/examples/backup-load

WORK=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-backup-load.XXXXXX")
DATA=$WORK/data
UPKEEP_PID=
cleanup() {
  if [ -n "$UPKEEP_PID" ]; then
    kill "$UPKEEP_PID" 2>/dev/null || true
    wait "$UPKEEP_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "pre-filling $TOKENS tokens in $DATA"
"$PREFILL" "$DATA" "$TOKENS" >"$WORK/secrets"
# shellcheck disable=SC1091
. "$WORK/secrets"
[ -n "${ACCOUNT_TOKEN:-}" ] || die "prefill printed no account token"
DB_SIZE=$(du -sh "$DATA" | cut -f1)

# The client makes RATE*CONNECTIONS tokens a second in the prefilled account: lift the
# per-account quota (default 1,000) so it measures writes, not 409s.
RUST_LOG=warn,upkeep::listening=info UPKEEP_MAX_TOKENS_PER_ACCOUNT=100000000 \
  taskset -c 0 "$UPKEEP" --data "$DATA" --log-format json serve \
  --listen 127.0.0.1:0 2>"$WORK/upkeep.log" &
UPKEEP_PID=$!
line=
for _ in $(seq 1 6000); do
  line=$(grep -m1 '"target":"upkeep::listening"' "$WORK/upkeep.log" || true)
  [ -n "$line" ] && break
  kill -0 "$UPKEEP_PID" 2>/dev/null || { cat "$WORK/upkeep.log" >&2; die "upkeep exited at start"; }
  sleep 0.01
done
[ -n "$line" ] || die "upkeep printed no listening line within 60 s"
PORT=$(sed -E 's/.*"listen":"127\.0\.0\.1:([0-9]+)".*/\1/' <<<"$line")
WORKERS=$(ls "/proc/$UPKEEP_PID/task" | wc -l)
log "upkeep (pid $UPKEEP_PID, cores $(taskset -cp "$UPKEEP_PID" | sed 's/.*: //')) listening on 127.0.0.1:$PORT"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "driving the routes: ${IDLE} s idle, then during the backup"
OUT=$(taskset -c 1 "$CLIENT" --upkeep "$UPKEEP" --data "$DATA" --addr "127.0.0.1:$PORT" \
  --token "$ACCOUNT_TOKEN" --out "$WORK/store.backup" --idle-secs "$IDLE" --rate "$RATE" \
  --connections "$CONNECTIONS")

kill -0 "$UPKEEP_PID" 2>/dev/null || die "upkeep died during the run"
grep -q '"level":"ERROR"' "$WORK/upkeep.log" && { grep '"level":"ERROR"' "$WORK/upkeep.log" >&2; die "upkeep logged errors"; }

echo
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
echo "upkeep: $REV (at build), under taskset -c 0 ($WORKERS threads at start); load client under taskset -c 1"
echo "store: TOKENS=$TOKENS account tokens + 100 operator tokens, $DB_SIZE on disk"
echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$OUT"
