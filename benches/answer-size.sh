#!/usr/bin/env bash
# What an update check's answer costs by its size and headers alone, upkeep's work aside:
# the hello-world (benches/hello.rs, `200 hello`) against the same program answering
# BYTES bytes with the headers upkeep adds to a check's answer (`--like-upkeep BYTES`:
# content-type, cache-control, a fresh x-request-id), in alternating wrk runs.
#
#   benches/answer-size.sh                 # 471 bytes (the WU answer of update-checks.sh), 6 rounds
#   BYTES=443 ROUNDS=8 benches/answer-size.sh
#
# Prints each round (plain, sized, plain) and the sized/plain ratio over the mean of the
# two plain runs beside it, then the median ratio. Needs wrk, curl and python3.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
HELLO=${HELLO:-$TARGET_DIR/release/examples/hello}
BYTES=${BYTES:-471}
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-4}

log() { printf '%s\n' "answer-size.sh: $*" >&2; }
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { log "error: $tool is needed"; exit 1; }
done
[ -x "$HELLO" ] || { log "error: build first: cargo build --release --example hello"; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=
start() { # name, then hello's arguments after PORT; sets PORT
  local name=$1 i
  shift
  "$HELLO" 0 "$@" >"$WORK/$name.out" 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do
    grep -q listening "$WORK/$name.out" 2>/dev/null && break
    sleep 0.05
  done
  PORT=$(sed -nE 's/^hello listening on 127\.0\.0\.1:([0-9]+)$/\1/p' "$WORK/$name.out")
  [ -n "$PORT" ] || { log "error: $name did not start: $(cat "$WORK/$name.out")"; exit 1; }
}
start plain
PLAIN=$PORT
start sized --like-upkeep "$BYTES"
SIZED=$PORT
got=$(curl -fsS -o /dev/null -w '%{size_download}' "http://127.0.0.1:$SIZED/")
[ "$got" = "$BYTES" ] || { log "error: the sized hello answered $got bytes, not $BYTES"; exit 1; }
head=$(curl -fsS -D - -o /dev/null "http://127.0.0.1:$SIZED/" | tr 'A-Z' 'a-z')
case "$head" in
  *x-request-id:*) ;;
  *) log "error: the sized hello sent no x-request-id"; exit 1 ;;
esac

rps() {
  local out
  out=$(wrk -t 2 -c 32 -d "${DURATION}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}')
  [ -n "$out" ] || { log "error: wrk reported no Requests/sec for port $1"; exit 1; }
  echo "$out"
}
log "hello against hello --like-upkeep $BYTES: $ROUNDS rounds of ${DURATION} s runs, wrk -t 2 -c 32"
ratios=()
for round in $(seq "$ROUNDS"); do
  a=$(rps "$PLAIN"); b=$(rps "$SIZED"); c=$(rps "$PLAIN")
  ratio=$(python3 -c "print(f'{2*$b/($a+$c):.3f}')")
  ratios+=("$ratio")
  printf 'round %d: plain %.0f, sized %.0f, plain %.0f req/s: sized/plain %s\n' "$round" "$a" "$b" "$c" "$ratio"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'median sized/plain over {len(r)} rounds: {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f})')" "${ratios[@]}"
