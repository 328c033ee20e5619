#!/usr/bin/env bash
# Where the server's CPU time goes per update check, kernel and user, with cache and TLB
# misses counted (sampling `perf record -e cpu-clock`, which works in a VM without
# hardware counters): what callgrind's instruction counts (benches/callgrind-checks.sh)
# cannot show.
#
#   benches/perf-checks.sh                  # hello-LIC, WU and LIC, one round each
#   ROUNDS=3 benches/perf-checks.sh         # more rounds (the machine is noisy)
#   BIN=path/to/upkeep benches/perf-checks.sh   # another build (default: target/release)
#
# Needs perf, wrk, python3 and the store benches/update-checks.sh fills
# (target/bench-licensing/update-checks-100000, or LIC_CACHE=…). Copies it, pushes the
# licensed `bench-plugin` 1.2.0 to lic00000 and a free `bench-check` 1.2.0 to a new account
# `bench`, and starts `upkeep serve` in its default configuration (the request log on, to
# /dev/null). For each mode it runs wrk (2 threads, 32 connections, 5 s) and samples the
# server process for 4 s of it (`perf record -e cpu-clock`, about 5,000 samples a second):
#   hello-LIC  the hello-world (benches/hello.rs) sent the LIC requests;
#   WU         /v1/public/bench/plugins/bench-check;
#   LIC        /v1/public/lic00000/plugins/bench-plugin?key=K with User-Agent
#              `WordPress/6.7; https://SITE`, cycling through 8,192 keys (every 12th).
# It prints, per request: the server's sampled CPU time, its kernel and user parts, the
# licensed lookups' own time (`key_standing` and `KeyIndex::get`), and the user-space
# symbols above 0.1 µs. Sampling adds its own cost: compare modes within a run, not
# against wrk-only runs.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET_DIR/release/upkeep}
HELLO=${HELLO:-$TARGET_DIR/release/examples/hello}
LIC_CACHE=${LIC_CACHE:-$TARGET_DIR/bench-licensing/update-checks-100000}
ROUNDS=${ROUNDS:-1}

log() { printf '%s\n' "perf-checks.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in perf wrk python3 curl; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
[ -x "$BIN" ] && [ -x "$HELLO" ] ||
  die "build first: cargo build --release --bin upkeep --example hello"
[ -e "$LIC_CACHE.keys" ] || die "no $LIC_CACHE.keys: run benches/update-checks.sh once to fill it"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

plugin_zip() { # path slug
  python3 - "$1" "$2" <<'PY'
import sys, zipfile
path, slug = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(path, "w") as z:
    z.writestr(f"{slug}/{slug}.php", "<?php\n/*\nPlugin Name: Bench\nVersion: 1.2.0\n*/\n")
    z.writestr(f"{slug}/readme.txt", "=== Bench ===\nStable tag: 1.2.0\n\n== Description ==\n"
               "A plugin.\n\n== Changelog ==\n= 1.2.0 =\n* x\n")
PY
}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cp -a "$LIC_CACHE" "$WORK/data"
plugin_zip "$WORK/check.zip" bench-check
plugin_zip "$WORK/plugin.zip" bench-plugin
"$BIN" --data "$WORK/data" account create --name Bench --email b@example.com --prefix bench >/dev/null
"$BIN" --data "$WORK/data" release push --account bench "$WORK/check.zip" >/dev/null
"$BIN" --data "$WORK/data" release push --account lic00000 "$WORK/plugin.zip" >/dev/null
SERVER_PORT=$(port)
HELLO_PORT=$(port)
"$BIN" --data "$WORK/data" serve --listen "127.0.0.1:$SERVER_PORT" >/dev/null 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
"$HELLO" "$HELLO_PORT" >/dev/null 2>&1 &
HELLO_PID=$!
PIDS+=("$HELLO_PID")
for _ in $(seq 300); do
  curl -fs -o /dev/null "http://127.0.0.1:$SERVER_PORT/healthz" && break
  sleep 0.1
done
curl -fs -o /dev/null "http://127.0.0.1:$SERVER_PORT/healthz" || die "the server did not start"
curl -fs -o /dev/null "http://127.0.0.1:$HELLO_PORT/" || die "the hello-world did not start"

# 8,192 keys spread evenly over the fill (every 12th of 100,000).
STEP=$(( $(wc -l <"$LIC_CACHE.keys") / 8192 ))
[ "$STEP" -ge 1 ] || STEP=1
awk -F'\t' -v step="$STEP" '(NR - 1) % step == 0 && n < 8192 { n++
  printf "/v1/public/lic00000/plugins/bench-plugin?key=%s\t%s\n", $3, $4 }' \
  "$LIC_CACHE.keys" >"$WORK/lic.paths"
first=$(head -1 "$WORK/lic.paths")
curl -fs -A "WordPress/6.7; https://${first#*$'\t'}" \
  "http://127.0.0.1:$SERVER_PORT${first%%$'\t'*}" | grep -q '"download_link"' ||
  die "LIC: the first key gets no download link (a key cache from another store format?)"

profile() { # label pid wrk-args...
  local label=$1 pid=$2
  shift 2
  wrk -t2 -c32 -d2s "$@" >/dev/null
  perf record -q -e cpu-clock -F 4999 -p "$pid" -o "$WORK/perf.data" -- sleep 4 \
    >"$WORK/perf.log" 2>&1 &
  local recorder=$!
  local rps
  rps=$(wrk -t2 -c32 -d5s "$@" | awk '/Requests\/sec/ {print $2}')
  wait "$recorder" || die "perf record failed: $(cat "$WORK/perf.log")"
  [ -n "$rps" ] && [ "$rps" != 0.00 ] || die "$label: wrk made no requests"
  perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio \
    >"$WORK/report.txt" 2>/dev/null || die "perf report failed"
  python3 - "$label" "$rps" "$WORK/report.txt" <<'PY'
import re, sys
label, rps, report = sys.argv[1], float(sys.argv[2]), sys.argv[3]
# cpu-clock's event count is the sampled CPU time in ns, whatever rate perf settled on;
# over 4 s of a wrk run at `rps`: µs of server CPU per request.
text = open(report).read()
count = re.search(r"Event count \(approx\.\): (\d+)", text)
if not count:
    sys.exit(f"{label}: no event count in perf's report")
per = int(count.group(1)) / 1e3 / (rps * 4)
kernel = user = lookups = 0.0
symbols = {}
for line in text.splitlines():
    m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
    if not m:
        continue
    share = float(m.group(1)) / 100
    if m.group(3) == "k":
        kernel += share
        continue
    user += share
    name = m.group(4).strip()
    if "key_standing" in name or "KeyIndex::get" in name:
        lookups += share
    symbols[name] = symbols.get(name, 0) + share
print(f"{label:9s} {rps:9.0f} req/s  server {per:6.2f} µs/request: kernel {kernel * per:5.2f}"
      f"  user {user * per:5.2f}  licensed lookups {lookups * per:5.3f}")
for name, share in sorted(symbols.items(), key=lambda kv: -kv[1]):
    if share * per < 0.1:
        break
    print(f"    {share * per:5.2f}  {name[:100]}")
PY
}

for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  profile hello-LIC "$HELLO_PID" "http://127.0.0.1:$HELLO_PORT/" -s benches/licensed-checks.lua -- "$WORK/lic.paths"
  profile WU "$SERVER" "http://127.0.0.1:$SERVER_PORT/v1/public/bench/plugins/bench-check"
  profile LIC "$SERVER" "http://127.0.0.1:$SERVER_PORT/" -s benches/licensed-checks.lua -- "$WORK/lic.paths"
done
