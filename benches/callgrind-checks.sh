#!/usr/bin/env bash
# Instructions per update check, by dialect, under valgrind's callgrind: repeatable on a
# busy machine where wrk's req/s are not (benches/update-checks.sh measures those).
#
#   benches/callgrind-checks.sh             # 2,000 requests per dialect
#   N=500 benches/callgrind-checks.sh       # fewer
#   BIN=path/to/upkeep benches/callgrind-checks.sh  # another build (default: target/release)
#
# Makes a data directory (`upkeep init`, an account `bench`, `release push` of a small free
# plugin `bench-check` 1.2.0), starts `upkeep serve` in its default configuration (RUST_LOG
# unset: the request log on, to /dev/null) under `valgrind --tool=callgrind`, and the
# hello-world (benches/hello.rs) under callgrind too. For each check — hello, WU
# (`/v1/public/bench/plugins/bench-check`), PUC (`/updates/bench/bench-check?installed_version=1.0.0`),
# EDD (`/edd/bench/?edd_action=get_version&item_id=ID`) — it zeroes the server's counters
# (callgrind_control -z), sends N keep-alive requests from one Python client (each answer
# checked: 200, and the offer with a link, once), dumps (callgrind_control -d) and prints
# the server's instructions per request; the dumps stay in OUT (default
# target/callgrind/<time>) for `callgrind_annotate --inclusive=yes`.
#
# LIC: when the store benches/update-checks.sh fills is there
# (target/bench-licensing/update-checks-100000, or LIC_CACHE=…), the data directory is a
# copy of it, lic00000's licensed bench-plugin gets version 1.2.0 too, and a fifth check
# is measured: the WunderUpdates check with a key (`?key=K`, User-Agent
# `WordPress/6.7; https://SITE`), cycling through the first 2,000 keys of the fill with
# their activated sites; every answer must carry a download link.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-2000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET_DIR/release/upkeep}
HELLO=${HELLO:-$TARGET_DIR/release/examples/hello}
OUT=${OUT:-$TARGET_DIR/callgrind/$(date -u +%Y%m%dT%H%M%S)}
LIC_CACHE=${LIC_CACHE:-$TARGET_DIR/bench-licensing/update-checks-100000}

log() { printf '%s\n' "callgrind-checks.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in valgrind callgrind_control curl jq python3; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
[ -x "$BIN" ] && [ -x "$HELLO" ] || die "build first: cargo build --release --bin upkeep --example hello"

mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-callgrind.XXXXXX")
DATA=$WORK/data
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() {
  local i
  for i in $(seq 1 1200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

LIC=
if [ -e "$LIC_CACHE.keys" ]; then
  LIC=1
  log "licensed check too: copying $LIC_CACHE"
  cp -a "$LIC_CACHE" "$DATA"
  head -2000 "$LIC_CACHE.keys" | awk -F'\t' '{ print $3 "\t" $4 }' >"$WORK/lic.keys"
fi
"$BIN" --data "$DATA" init >/dev/null
"$BIN" --data "$DATA" --json account create --name "Bench Plugins" --email bench@example.com \
  --prefix bench >/dev/null
python3 - "$WORK/bench-check.zip" <<'EOF'
import sys, zipfile
for slug, name in [("bench-check", "Bench Check"), ("bench-plugin", "Bench Plugin")]:
    with zipfile.ZipFile(sys.argv[1].replace("bench-check", slug), "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{slug}/", b"")
        z.writestr(f"{slug}/{slug}.php",
                   f"<?php\n/*\nPlugin Name: {name}\nPlugin URI: https://example.com/{slug}\n"
                   "Description: A benchmark plugin.\nAuthor: upkeep\nVersion: 1.2.0\n"
                   "Requires at least: 6.0\nTested up to: 6.7\nRequires PHP: 7.4\n*/\n")
EOF
PORT=$(free_port)
HELLO_PORT=$(free_port)
"$BIN" --data "$DATA" --json release push "$WORK/bench-check.zip" --account bench \
  --listen "127.0.0.1:$PORT" >"$WORK/push.json"
if [ -n "$LIC" ]; then
  "$BIN" --data "$DATA" --json release push "$WORK/bench-plugin.zip" --account lic00000 \
    --listen "127.0.0.1:$PORT" >/dev/null
fi
ITEM_ID=$(jq -r '.update_urls | to_entries[] | .value' "$WORK/push.json" | sed -nE 's/.*item_id=([0-9]+).*/\1/p')
[ -n "$ITEM_ID" ] || die "release push printed no EDD URL"

env -u RUST_LOG valgrind --tool=callgrind --callgrind-out-file="$OUT/upkeep.%p" \
  "$BIN" --data "$DATA" serve --listen "127.0.0.1:$PORT" 2>/dev/null &
UPKEEP_PID=$!
PIDS+=("$UPKEEP_PID")
valgrind --tool=callgrind --callgrind-out-file="$OUT/hello.%p" "$HELLO" "$HELLO_PORT" \
  >/dev/null 2>&1 &
HELLO_PID=$!
PIDS+=("$HELLO_PID")
wait_http "http://127.0.0.1:$PORT/healthz" || die "upkeep did not start"
wait_http "http://127.0.0.1:$HELLO_PORT/" || die "hello did not start"

# N keep-alive GETs of a path; checks every status, and the first answer's offer (every
# answer's, for lic: a key and site from $WORK/lic.keys each time, appended to the path).
client() { # port, path, check (wu|puc|edd|lic|none)
  python3 - "$1" "$2" "$3" "$N" "$WORK/lic.keys" <<'EOF'
import http.client, json, sys
port, path, kind, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
keys = [l.rstrip("\n").split("\t") for l in open(sys.argv[5])] if kind == "lic" else []
conn = http.client.HTTPConnection("127.0.0.1", int(port))
for i in range(n):
    headers = {"Host": "127.0.0.1:" + port}
    target = path
    if keys:
        key, site = keys[i % len(keys)]
        target = f"{path}?key={key}"
        headers["User-Agent"] = f"WordPress/6.7; https://{site}"
    conn.request("GET", target, headers=headers)
    res = conn.getresponse()
    body = res.read()
    if res.status != 200:
        sys.exit(f"{target}: {res.status} {body[:300]!r}")
    if kind == "lic" and b'"download_link"' not in body:
        sys.exit(f"{target}: no download link: {body[:500]!r}")
    if i == 0 and kind != "none":
        doc = json.loads(body)
        ok = {
            "wu": lambda d: d["version"] == "1.2.0" and "/dl/" in d["download_link"],
            "puc": lambda d: d["version"] == "1.2.0" and "/dl/" in d["download_url"],
            "edd": lambda d: d["new_version"] == "1.2.0" and "/dl/" in d["download_link"],
            "lic": lambda d: d["version"] == "1.2.0" and d["license"] == {"valid": True},
        }[kind](doc)
        if not ok:
            sys.exit(f"{path}: not an offer with a link: {body[:500]!r}")
EOF
}

# Zero, run, dump; prints the instructions of the dump (all threads).
measure() { # label, pid, port, path, check
  local label=$1 pid=$2
  callgrind_control -z "$pid" >/dev/null 2>&1
  client "$3" "$4" "$5"
  callgrind_control -d "$label" "$pid" >/dev/null 2>&1
  local file
  file=$(ls -t "$OUT"/*."$pid".* 2>/dev/null | head -1)
  [ -n "$file" ] || file=$(ls -t "$OUT"/*"$pid"* | head -1)
  local ir
  ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$file")
  mv "$file" "$OUT/$label.callgrind"
  printf '%s %s\n' "$label" "$ir"
}

# Warm both (first-time paths: views built, pages touched), then measure.
N_SAVE=$N
N=20
client "$PORT" "/v1/public/bench/plugins/bench-check" wu
client "$PORT" "/updates/bench/bench-check?installed_version=1.0.0" puc
client "$PORT" "/edd/bench/?edd_action=get_version&item_id=$ITEM_ID" edd
client "$HELLO_PORT" / none
[ -z "$LIC" ] || client "$PORT" /v1/public/lic00000/plugins/bench-plugin lic
N=$N_SAVE

RESULTS=()
RESULTS+=("$(measure hello "$HELLO_PID" "$HELLO_PORT" / none)")
RESULTS+=("$(measure wu "$UPKEEP_PID" "$PORT" "/v1/public/bench/plugins/bench-check" wu)")
RESULTS+=("$(measure puc "$UPKEEP_PID" "$PORT" "/updates/bench/bench-check?installed_version=1.0.0" puc)")
RESULTS+=("$(measure edd "$UPKEEP_PID" "$PORT" "/edd/bench/?edd_action=get_version&item_id=$ITEM_ID" edd)")
[ -z "$LIC" ] || RESULTS+=("$(measure lic "$UPKEEP_PID" "$PORT" /v1/public/lic00000/plugins/bench-plugin lic)")

REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
git status --porcelain -- src 2>/dev/null | grep -q . && REV+=" + uncommitted changes in src/" || true
echo "upkeep $REV ($BIN), $N requests per check, one keep-alive connection; dumps in $OUT"
echo
echo "| check | instructions per request (server, all threads) | vs hello |"
echo "|---|---:|---:|"
HELLO_IR=
for row in "${RESULTS[@]}"; do
  read -r label ir <<<"$row"
  per=$(awk -v i="$ir" -v n="$N" 'BEGIN { printf "%.0f", i / n }')
  [ "$label" = hello ] && HELLO_IR=$per
  printf '| %s | %s | %s× |\n' "$label" "$per" "$(awk -v p="$per" -v h="$HELLO_IR" 'BEGIN { printf "%.2f", p / h }')"
done
