#!/usr/bin/env bash
# Licensing at scale (SPEC §9): upkeep serving a store of KEYS download keys and KEYS
# activations — start-up time and memory, before and after 10 s of validation load —
# and, on a copy of that store, durable activations with 32 clients.
#
#   benches/licensing-scale.sh                 # 1,000,000 keys (the fill takes minutes, once)
#   KEYS=100000 benches/licensing-scale.sh     # smaller
#   ACTIVATIONS=0 benches/licensing-scale.sh   # skip the activation load (and its copy)
#
# 1. Builds release (upkeep, examples prefill-licensing and activation-load).
# 2. Fills target/bench-licensing/$KEYS (4 accounts, 1,000 customers each, one product
#    each licensed by download keys with require_activation; KEYS keys, each activated
#    for one site) unless it is there already (the criterion bench `licensing` uses the
#    same cache), and says how long the fill took.
# 3. Starts `upkeep serve` on it (RUST_LOG=warn,upkeep::listening=info, JSON log) on
#    127.0.0.1:0 and measures the time from exec to the first 200 of /healthz (curl every
#    10 ms) and to the listening line's time stamp; VmRSS and VmHWM 1 s after.
# 4. Validation load: wrk (-t THREADS -c CONNECTIONS -d DURATION, 2/32/10 s) on the
#    UpdaterCloud update check `GET /api/v1/products/{id}/update?download_key=K&domain=D`,
#    each request another of 8,192 real keys with its activated site (a Lua script
#    cycles through them), i.e. `service::licensing::check` with a site target per
#    request; then VmRSS / VmHWM again. Stops upkeep (SIGTERM) and starts it a second
#    time (after a clean stop) for the start-up figures again.
# 5. Unless ACTIVATIONS=0: copies the store (cp -a, next to the cache), runs
#    `activation-load COPY --clients 32 --duration DURATION`, deletes the copy.
#
# The server runs on the cached directory itself: the validation load only notes checks
# (persisted in batches: the keys' last_checked_at), it changes no key or activation.
# Traffic goes to 127.0.0.1 only; everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
ACTIVATIONS=${ACTIVATIONS:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
CACHE=$TARGET_DIR/bench-licensing
DATA=$CACHE/$KEYS

log() { printf '%s\n' "licensing-scale.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"

log "building release binaries"
cargo build --release --bin upkeep --example prefill-licensing --example activation-load >&2
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
git status --porcelain -- src 2>/dev/null | grep -q . && REV+=" + uncommitted changes in src/" || true
UPKEEP=$TARGET_DIR/release/upkeep

WORK=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-licensing.XXXXXX")
COPY=$CACHE/load-copy.$$
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK" "$COPY" "$COPY.keys"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
mem() { awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { printf "VmRSS %d MiB, VmHWM %d MiB", r / 1024, h / 1024 }' "/proc/$1/status"; }

# ---- 2. the store ------------------------------------------------------------------------
mkdir -p "$CACHE"
if [ -f "$DATA.keys" ]; then
  FILL="cached (${DATA}; $(cat "$DATA.fill" 2>/dev/null || echo "fill time not recorded"))"
else
  rm -rf "$DATA"
  log "filling $DATA with $KEYS keys and $KEYS activations"
  started=$(now_ns)
  "$TARGET_DIR/release/examples/prefill-licensing" "$DATA" "$KEYS" 2> >(tee "$WORK/fill.log" >&2)
  fill_ms=$(( ($(now_ns) - started) / 1000000 ))
  echo "filled in $((fill_ms / 1000)).$(( (fill_ms % 1000) / 100 )) s: $(tail -1 "$WORK/fill.log")" >"$DATA.fill"
  FILL="made now: $(cat "$DATA.fill")"
fi
SIZE=$(du -sh "$DATA" | cut -f1)

# ---- 3. serve ----------------------------------------------------------------------------
UPKEEP_PID=
PORT=
start_upkeep() {
  local err=$1 started line stamp healthy
  started=$(now_ns)
  RUST_LOG=warn,upkeep::listening=info "$UPKEEP" --data "$DATA" --log-format json serve \
    --listen 127.0.0.1:0 2>"$err" &
  UPKEEP_PID=$!
  PIDS+=("$UPKEEP_PID")
  line=
  for _ in $(seq 1 12000); do
    line=$(grep -m1 '"target":"upkeep::listening"' "$err" || true)
    [ -n "$line" ] && break
    kill -0 "$UPKEEP_PID" 2>/dev/null || { cat "$err" >&2; die "upkeep exited at start"; }
    sleep 0.01
  done
  [ -n "$line" ] || die "upkeep printed no listening line within 120 s"
  PORT=$(sed -E 's/.*"listen":"127\.0\.0\.1:([0-9]+)".*/\1/' <<<"$line")
  until curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null; do sleep 0.01; done
  healthy=$(now_ns)
  stamp=$(sed -E 's/.*"timestamp":"([^"]+)".*/\1/' <<<"$line")
  LISTEN_MS=$(( ($(date -d "$stamp" +%s%N) - started) / 1000000 ))
  HEALTHZ_MS=$(( (healthy - started) / 1000000 ))
}
stop_upkeep() {
  kill "$UPKEEP_PID"
  wait "$UPKEEP_PID" 2>/dev/null || true
}

log "starting upkeep on $DATA"
start_upkeep "$WORK/upkeep.1.log"
sleep 1
START1="start 1: /healthz answered ${HEALTHZ_MS} ms after exec (listening line at ${LISTEN_MS} ms); after 1 s: $(mem "$UPKEEP_PID")"
log "$START1"

# ---- 4. validation load ------------------------------------------------------------------
step=$(( KEYS / 8192 )); [ "$step" -ge 1 ] || step=1
awk -F'\t' -v step="$step" '(NR - 1) % step == 0 && n < 8192 {
  n++
  printf "/api/v1/products/%s/update?download_key=%s&domain=%s&installed_version=0.1.0\n", $2, $3, $4
}' "$DATA.keys" >"$WORK/paths.txt"
first=$(head -1 "$WORK/paths.txt")
ANSWER=$(curl -fsS "http://127.0.0.1:$PORT$first")
log "sample answer: $ANSWER"
# The check must have found the key valid for its site (no license error in the answer).
if grep -Eq 'site_inactive|not_found|missing_key|expired|disabled|product_mismatch' <<<"$ANSWER"; then
  die "the sample check did not validate: $ANSWER"
fi
cat >"$WORK/paths.lua" <<'EOF'
local paths = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = math.random(#paths)
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
EOF
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
timeout $((DURATION + 30)) wrk --latency -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" \
  -s "$WORK/paths.lua" "http://127.0.0.1:$PORT" -- "$WORK/paths.txt" >"$WORK/wrk.txt" 2>&1 \
  || { cat "$WORK/wrk.txt" >&2; die "wrk failed"; }
AFTER_LOAD=$(mem "$UPKEEP_PID")
WRK=$(awk '
  $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
  /^Requests\/sec:/ { rps = $2 } /Non-2xx or 3xx responses:/ { bad = $NF }
  END { printf "%s req/s, p50 %s, p99 %s, non-2xx %d", rps, p50, p99, bad }' "$WORK/wrk.txt")
stop_upkeep
log "validation load: $WRK; after it: $AFTER_LOAD"

start_upkeep "$WORK/upkeep.2.log"
sleep 1
START2="start 2 (after a clean stop): /healthz answered ${HEALTHZ_MS} ms after exec (listening line at ${LISTEN_MS} ms); after 1 s: $(mem "$UPKEEP_PID")"
log "$START2"
stop_upkeep

# ---- 5. durable activations --------------------------------------------------------------
ACT="skipped (ACTIVATIONS=0)"
if [ "$ACTIVATIONS" != 0 ]; then
  log "copying the store for the activation load"
  cp -a "$DATA" "$COPY"
  cp "$DATA.keys" "$COPY.keys"
  ACT=$("$TARGET_DIR/release/examples/activation-load" "$COPY" --clients 32 --duration "$DURATION")
  rm -rf "$COPY" "$COPY.keys"
fi

# ---- report ------------------------------------------------------------------------------
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); upkeep: $REV (at build)"
echo "machine: $(nproc) cores, $(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1), Linux $(uname -r); load average before the validation load: $LOAD_BEFORE"
echo "store: $KEYS keys and $KEYS activations, $SIZE on disk; $FILL"
echo "$START1"
echo "validation load (wrk -t $THREADS -c $CONNECTIONS -d ${DURATION}s, GET /api/v1/products/{id}/update with download_key and domain, 8,192 keys): $WRK"
echo "after the validation load: $AFTER_LOAD"
echo "$START2"
echo "activation load:"
echo "$ACT"
