#!/usr/bin/env bash
# The update-check and download benchmark (SPEC §8): upkeep's public routes against a bare
# hyper hello-world (checks) and nginx (downloads), on this machine, in the same run.
#
#   benches/update-checks.sh                     # ~7 minutes, plus the build
#                                                # and, the first time, ~1 minute of key fill)
#   DURATION=5 WARMUP=1 benches/update-checks.sh # shorter; also CONNECTIONS=32 THREADS=2
#   CHECK_ROUNDS=9 CHECK_DURATION=3 benches/update-checks.sh
#                                                # rounds of the update checks (default 5),
#                                                # seconds per check run (default 4)
#   KEYS=100000 benches/update-checks.sh         # keys and activations in the store (default)
#   ONLY=download benches/update-checks.sh       # parts 2 and 3 only (~2 minutes; no key fill,
#                                                # no hello, no checks timed)
#   ONLY=download ROUNDS=4 UPKEEP_B=/tmp/upkeep-b benches/update-checks.sh
#                                                # A/B: a second upkeep binary (another build)
#                                                # measured alternately with this one
#
# ONLY=download: the data directory starts empty (no KEYS fill, no licensed product), the
# hello-world is not started and no check is timed; the downloads and the memory run are
# as below. ROUNDS (default 2) is the number of upkeep runs of the 10 MiB download per
# binary. UPKEEP_B names a second upkeep binary: it serves a copy of the same data
# directory on its own port, the download runs go nginx, A, nginx, B, nginx, A, … (each
# upkeep run between two nginx runs), and the memory run (part 3) is made for each binary
# in turn. Without these variables the script behaves as described below.
#
# Builds release (upkeep, the examples hello and prefill-licensing). The data directory
# starts as a store of KEYS download keys, each activated for its own site
# (`prefill-licensing DATA KEYS --accounts 1`: account lic00000, product bench-plugin
# licensed by download keys with require_activation; kept in
# target/bench-licensing/update-checks-KEYS and copied, so only the first run fills it).
# On it: `upkeep init`, an account (`upkeep account create`, which prints its first API
# token) and a second token (`upkeep token create`), three free plugins pushed with
# `upkeep release push` — bench-check (a few KiB: the update checks), bench-10m (a 10 MiB
# zip) and bench-100m (a 100 MiB zip; incompressible, stored) — and version 1.2.0 of the
# licensed bench-plugin (`release push --account lic00000`). Then it starts `upkeep serve --listen
# 127.0.0.1:PORT` in its default configuration (RUST_LOG unset, the text log: one line per
# request, to /dev/null), the hello-world, and nginx with a private config file
# (`sendfile on`, Debian's defaults otherwise) serving the same zip files from disk, each
# on a free port, and measures with wrk (--latency -t THREADS -c CONNECTIONS -d DURATION):
#
#  1. update checks: CHECK_ROUNDS rounds (default 5) of CHECK_DURATION-second runs
#     (default 4) in this order, so machine noise hits every side:
#       hello, WU, hello, PUC, hello, EDD, hello, LIC, hello, hello-LIC, LIC, hello-LIC
#     (hello-LIC: the hello-world sent LIC's requests by LIC's wrk script, so both sides
#     of that ratio pay the same client work: the Lua, and longer requests to parse)
#     WU  = GET /v1/public/{prefix}/plugins/bench-check                 (WunderUpdates)
#     PUC = GET /updates/{prefix}/bench-check?installed_version=1.0.0    (Plugin Update Checker)
#     EDD = GET /edd/{prefix}/?edd_action=get_version&item_id=ID        (EDD Software Licensing)
#     LIC = GET /v1/public/lic00000/plugins/bench-plugin?key=K with `User-Agent:
#           WordPress/6.7; https://SITE` (the WunderUpdates check as WordPress sends it),
#           K and SITE cycling through 8,192 of the store's keys and their activated sites
#           (a wrk Lua script): the key lookup, the activation check and a signed link.
#     Before timing, every check is asserted to answer the offer (1.2.0) with a download
#     link; for LIC, 16 sampled keys must answer `license.valid` with a link, the same
#     check without a key `missing_key` and from another site `site_inactive`, both
#     without a link, and the link must download the pushed zip.
#     Each ratio is req/s over the mean of the two hello runs beside it; PUC and EDD are
#     also given over their round's WU run; the licensed target is given for both LIC
#     runs (beside plain hello runs, and beside hello-LIC). Each target is judged on the
#     median of its per-round ratios, and every round's ratio is printed with it (the
#     shared machine moves the hello-world by a third within minutes: one pair of 10 s
#     runs says little). Targets: WU ≥ 0.8× hello; LIC ≥ 0.7× hello; PUC and EDD within
#     10 % of WU.
#  2. the 10 MiB download: nginx, upkeep, nginx, upkeep, nginx (same wrk parameters, same
#     connections). The upkeep URL is the signed /dl/… link of a WU check's download_link;
#     nginx serves the same bytes. Target: upkeep ≥ 0.8× nginx (each upkeep run over the
#     mean of the nginx runs beside it).
#  3. memory: upkeep restarted (a fresh VmHWM), then 100 concurrent `curl -o /dev/null` of
#     the 100 MiB file's signed link. VmRSS/VmHWM from /proc/PID/status before, sampled
#     every 50 ms during, and after. Target: growth (peak − before) < 64 MiB.
#
# Traffic goes to 127.0.0.1 only and every run is bounded in time. Everything started
# here is stopped on exit and the temporary directory (~240 MB) is deleted. Needs cargo,
# wrk, curl, jq, python3 (to write the zips) and nginx (wrk and nginx are installed with
# apt-get when missing and running as root; nginx is only run as this script's child,
# never as a system service).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CHECK_ROUNDS=${CHECK_ROUNDS:-5}
CHECK_DURATION=${CHECK_DURATION:-4}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
DOWNLOADS=${DOWNLOADS:-100}
KEYS=${KEYS:-100000}
ONLY=${ONLY:-}
ROUNDS=${ROUNDS:-2}
UPKEEP_B=${UPKEEP_B:-}
case $ONLY in "" | download) ;; *) echo "update-checks.sh: ONLY is empty or download, not $ONLY" >&2; exit 1 ;; esac
TARGET_DIR=${CARGO_TARGET_DIR:-target}

log() { printf '%s\n' "update-checks.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- tools -----------------------------------------------------------------------------
need_apt() { # command, package
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing $2 (apt-get)"
    # Debian's policy-rc.d in containers keeps the nginx package from starting a service;
    # where it does start one, it is on port 80 and left alone: ours runs on a free port.
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >/dev/null
  else
    die "$1 is needed (Debian/Ubuntu: apt-get install $2)"
  fi
}
need_apt wrk wrk
need_apt nginx nginx
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
NGINX=$(command -v nginx)

log "building release binaries"
if [ "$ONLY" = download ]; then
  cargo build --release --bin upkeep >&2
else
  cargo build --release --bin upkeep --example hello --example prefill-licensing >&2
fi
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
git status --porcelain -- src 2>/dev/null | grep -q . && REV+=" + uncommitted changes in src/" || true
UPKEEP=$TARGET_DIR/release/upkeep
HELLO=$TARGET_DIR/release/examples/hello
PREFILL=$TARGET_DIR/release/examples/prefill-licensing
if [ -n "$UPKEEP_B" ]; then
  [ -x "$UPKEEP_B" ] || die "UPKEEP_B=$UPKEEP_B is not an executable"
  UPKEEP_B=$(realpath "$UPKEEP_B")
fi

# ---- cleanup ---------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-checks.XXXXXX")
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

# ---- helpers (as in load.sh) -----------------------------------------------------------
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until $1 (a URL) answers 200.
wait_http() {
  local i
  for i in $(seq 1 600); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

UPKEEP_PID=
UPKEEP_PORT=$(free_port)
UPKEEP_B_PID=
UPKEEP_B_PORT=$(free_port)
# upkeep serve in its default configuration: RUST_LOG unset, the default text log format
# (one line per request), stderr to /dev/null. Arguments: binary, data directory, port;
# the process id is left in SERVED_PID.
SERVED_PID=
serve() {
  env -u RUST_LOG "$1" --data "$2" serve --listen "127.0.0.1:$3" 2>/dev/null &
  SERVED_PID=$!
  PIDS+=("$SERVED_PID")
  wait_http "http://127.0.0.1:$3/healthz" || die "$1 did not answer on port $3"
}
start_upkeep() {
  serve "$UPKEEP" "$DATA" "$UPKEEP_PORT"
  UPKEEP_PID=$SERVED_PID
}
stop_upkeep() {
  kill "$UPKEEP_PID"
  wait "$UPKEEP_PID" 2>/dev/null || true
}
start_upkeep_b() { # UPKEEP_B on its copy of the data directory
  serve "$UPKEEP_B" "$DATA_B" "$UPKEEP_B_PORT"
  UPKEEP_B_PID=$SERVED_PID
}
stop_upkeep_b() {
  kill "$UPKEEP_B_PID"
  wait "$UPKEEP_B_PID" 2>/dev/null || true
}

# Runs wrk; prints "req/s p50_ms p99_ms non2xx errors MiB/s". Arguments: duration, url,
# extra wrk arguments, then optionally `--` and the Lua script's arguments. The raw output
# is kept in $WORK/wrk.N.txt (and echoed on failure).
RUN_N=0
run_wrk() {
  local duration=$1 url=$2
  shift 2
  local opts=() script_args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; script_args=(-- "$@"); }
  RUN_N=$((RUN_N + 1))
  local out=$WORK/wrk.$RUN_N.txt
  timeout $((duration + 30)) wrk --latency -t "$THREADS" -c "$CONNECTIONS" -d "${duration}s" \
    "${opts[@]}" "$url" "${script_args[@]}" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed on $url"; }
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000;
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0;
      if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000;
      return v + 0;
    }
    function mib(v) {
      if (v ~ /GB$/) return substr(v, 1, length(v) - 2) * 1024;
      if (v ~ /MB$/) return substr(v, 1, length(v) - 2) + 0;
      if (v ~ /KB$/) return substr(v, 1, length(v) - 2) / 1024;
      if (v ~ /B$/)  return substr(v, 1, length(v) - 1) / 1048576;
      return v + 0;
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    /^Transfer\/sec:/ { tps = mib($2) }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /Socket errors:/ { errs = $0; sub(/.*Socket errors: */, "", errs); gsub(/ /, "", errs) }
    END {
      if (rps == "") exit 1;
      printf "%.*f %.3f %.3f %d %s %.0f\n", (rps < 100 ? 1 : 0), rps, p50, p99, bad + 0, (errs == "" ? "-" : errs), tps
    }' "$out" || { cat "$out" >&2; die "could not parse wrk output"; }
}

# Sanity: a URL answers 200 (extra curl arguments allowed); the body is in $WORK/check.body.
check() {
  local code
  code=$(curl -s -o "$WORK/check.body" -w '%{http_code}' "$@")
  [ "$code" = 200 ] || { head -c 2000 "$WORK/check.body" >&2; die "expected 200 from: $*, got $code"; }
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the store: keys, init, account, token, four releases ------------------------------
# KEYS download keys and activations (one account, lic00000), filled once and cached.
LIC_CACHE=$TARGET_DIR/bench-licensing/update-checks-$KEYS
if [ "$ONLY" = download ]; then
  log "ONLY=download: an empty data directory in $WORK (no keys)"
  mkdir -p "$DATA"
elif [ ! -e "$LIC_CACHE.keys" ]; then
  log "filling $LIC_CACHE with $KEYS download keys and activations (once; ~1 minute per 100,000)"
  rm -rf "$LIC_CACHE" "$LIC_CACHE.keys.partial"
  mkdir -p "$(dirname "$LIC_CACHE")"
  "$PREFILL" "$LIC_CACHE" "$KEYS" --accounts 1 --customers 1000 >&2
fi
if [ "$ONLY" != download ]; then
  [ "$(wc -l <"$LIC_CACHE.keys")" = "$KEYS" ] || die "$LIC_CACHE.keys does not list $KEYS keys"
  log "making the data directory (a copy of $LIC_CACHE) and releases in $WORK"
  cp -a "$LIC_CACHE" "$DATA"
fi
"$UPKEEP" --data "$DATA" init >/dev/null
"$UPKEEP" --data "$DATA" --json account create --name "Bench Plugins" \
  --email bench@example.com --prefix bench >"$WORK/account.json"
ACCOUNT_TOKEN=$(jq -r '.. | strings | select(startswith("upk_at_"))' "$WORK/account.json" | head -1)
[ -n "$ACCOUNT_TOKEN" ] || { cat "$WORK/account.json" >&2; die "account create printed no token"; }
"$UPKEEP" --data "$DATA" --json token create --account bench --name bench >"$WORK/token.json"
BENCH_TOKEN=$(jq -r '.. | strings | select(startswith("upk_at_"))' "$WORK/token.json" | head -1)
[ -n "$BENCH_TOKEN" ] || { cat "$WORK/token.json" >&2; die "token create printed no token"; }
PREFIX=bench

# Plugin zips: bench-check (small), bench-10m and bench-100m (exactly 10 and 100 MiB,
# random bytes stored uncompressed, so the zip on disk is the size the name says).
mkdir -p "$WORK/www"
python3 - "$WORK/www" <<'EOF'
import io, os, sys, zipfile
out = sys.argv[1]
def php(name, slug):
    return (f"<?php\n/*\nPlugin Name: {name}\nPlugin URI: https://example.com/{slug}\n"
            f"Description: A benchmark plugin.\nAuthor: upkeep\nVersion: 1.2.0\n"
            f"Requires at least: 6.0\nTested up to: 6.7\nRequires PHP: 7.4\n*/\n")
def write(slug, name, total):
    def build(n):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            z.writestr(f"{slug}/", b"")
            z.writestr(f"{slug}/{slug}.php", php(name, slug))
            if n is not None:
                z.writestr(f"{slug}/payload.bin", os.urandom(n))
        return buf.getvalue()
    data = build(None) if total is None else build(total - len(build(0)))
    assert total is None or len(data) == total, (len(data), total)
    with open(os.path.join(out, f"{slug}.zip"), "wb") as f:
        f.write(data)
write("bench-check", "Bench Check", None)
write("bench-plugin", "Bench Plugin", None)
write("bench-10m", "Bench 10 MiB", 10 * 1024 * 1024)
write("bench-100m", "Bench 100 MiB", 100 * 1024 * 1024)
EOF
for slug in bench-check bench-10m bench-100m; do
  "$UPKEEP" --data "$DATA" --json release push "$WORK/www/$slug.zip" --account "$PREFIX" \
    --listen "127.0.0.1:$UPKEEP_PORT" >"$WORK/push.$slug.json"
done
# The licensed product: version 1.2.0 of lic00000's bench-plugin.
[ "$ONLY" = download ] || "$UPKEEP" --data "$DATA" --json release push "$WORK/www/bench-plugin.zip" \
  --account lic00000 --listen "127.0.0.1:$UPKEEP_PORT" >"$WORK/push.bench-plugin.json"
EDD_URL=$(jq -r '.update_urls | to_entries[] | select(.value | contains("/edd/")) | .value' \
  "$WORK/push.bench-check.json")
ITEM_ID=$(sed -nE 's/.*item_id=([0-9]+).*/\1/p' <<<"$EDD_URL")
[ -n "$ITEM_ID" ] || { cat "$WORK/push.bench-check.json" >&2; die "release push printed no EDD URL"; }

# UPKEEP_B serves a copy of the same store (the same link key, so the same signed links).
if [ -n "$UPKEEP_B" ]; then
  DATA_B=$WORK/data-b
  cp -a "$DATA" "$DATA_B"
fi

# ---- servers ---------------------------------------------------------------------------
start_upkeep
log "upkeep listening on 127.0.0.1:$UPKEEP_PORT (default configuration), VmRSS $(status_kb "$UPKEEP_PID" VmRSS) kB"
if [ -n "$UPKEEP_B" ]; then
  start_upkeep_b
  log "UPKEEP_B ($UPKEEP_B) listening on 127.0.0.1:$UPKEEP_B_PORT"
fi

HELLO_PORT=$(free_port)
if [ "$ONLY" != download ]; then
  "$HELLO" "$HELLO_PORT" >"$WORK/hello.log" 2>&1 &
  PIDS+=("$!")
  wait_http "http://127.0.0.1:$HELLO_PORT/" || die "hello did not start"
fi

# nginx: a private prefix and config, in the foreground as our child; Debian's defaults
# (worker_processes auto, sendfile on, tcp_nopush on, access log on) on a free port.
NGINX_PORT=$(free_port)
NGX=$WORK/nginx
mkdir -p "$NGX/logs" "$NGX/tmp"
chmod 755 "$WORK" "$WORK/www"
chmod 644 "$WORK"/www/*.zip
cat >"$NGX/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log;
events { worker_connections 1024; }
http {
  sendfile on;
  tcp_nopush on;
  types { application/zip zip; }
  default_type application/octet-stream;
  access_log $NGX/logs/access.log;
  client_body_temp_path $NGX/tmp/body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
  }
}
EOF
"$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" &
PIDS+=("$!")
wait_http "http://127.0.0.1:$NGINX_PORT/bench-check.zip" || { cat "$NGX/logs/error.log" >&2; die "nginx did not start"; }

UP=http://127.0.0.1:$UPKEEP_PORT
HELLO_URL=http://127.0.0.1:$HELLO_PORT/
WU_URL=$UP/v1/public/$PREFIX/plugins/bench-check
PUC_URL="$UP/updates/$PREFIX/bench-check?installed_version=1.0.0"
EDD_URL="$UP/edd/$PREFIX/?edd_action=get_version&item_id=$ITEM_ID"

# Sanity: the CLI's tokens work (the public routes below need none).
check -H "x-api-key: $ACCOUNT_TOKEN" "$UP/v1/account"
check -H "x-api-key: $BENCH_TOKEN" "$UP/v1/account"
# Sanity: each check answers 200 with an offer of 1.2.0 and a download link.
check "$WU_URL"
[ "$(jq -r '.version' "$WORK/check.body")" = 1.2.0 ] && jq -e '.download_link' "$WORK/check.body" >/dev/null \
  || { cat "$WORK/check.body" >&2; die "WU: no offer"; }
check "$PUC_URL"
[ "$(jq -r '.version' "$WORK/check.body")" = 1.2.0 ] && jq -e '.download_url' "$WORK/check.body" >/dev/null \
  || { cat "$WORK/check.body" >&2; die "PUC: no offer"; }
check "$EDD_URL"
[ "$(jq -r '.new_version' "$WORK/check.body")" = 1.2.0 ] && jq -e '.download_link | startswith("http")' "$WORK/check.body" >/dev/null \
  || { cat "$WORK/check.body" >&2; die "EDD: no offer"; }
CHECK_BYTES=$(for u in "$WU_URL" "$PUC_URL" "$EDD_URL"; do curl -s "$u" | wc -c; done | paste -sd/)

if [ "$ONLY" != download ]; then # (the licensed check; left unindented)
# The licensed check: 8,192 of the keys (evenly spread) with their activated sites, as
# "path<TAB>site" lines for benches/licensed-checks.lua.
LIC_PATH=/v1/public/lic00000/plugins/bench-plugin
step=$(( KEYS / 8192 )); [ "$step" -ge 1 ] || step=1
awk -F'\t' -v step="$step" -v path="$LIC_PATH" '(NR - 1) % step == 0 && n < 8192 {
  n++
  printf "%s?key=%s\t%s\n", path, $3, $4
}' "$LIC_CACHE.keys" >"$WORK/lic.paths"
lic_check() { # path, site: the answer in $WORK/check.body
  check -A "WordPress/6.7; https://$2" "$UP$1"
}
# Sanity: sampled keys get the offer with a link, license valid; without the key or from
# another site, no link (so the timed requests take the real path: lookup, activation, MAC).
LIC_SAMPLE=$(awk 'NR % 512 == 1' "$WORK/lic.paths")
[ "$(wc -l <<<"$LIC_SAMPLE")" -ge 16 ] || die "fewer than 16 licensed sample keys"
while IFS=$'\t' read -r path site; do
  lic_check "$path" "$site"
  jq -e '.version == "1.2.0" and .license.valid == true and (.download_link | startswith("http"))' \
    "$WORK/check.body" >/dev/null || { cat "$WORK/check.body" >&2
      die "LIC: no offer with a link for $path ($site) (a key cache from another store format? delete $LIC_CACHE and $LIC_CACHE.keys)"; }
done <<<"$LIC_SAMPLE"
IFS=$'\t' read -r LIC_ONE LIC_SITE <"$WORK/lic.paths"
lic_check "$LIC_ONE" "$LIC_SITE"
LIC_LINK=$(jq -r '.download_link' "$WORK/check.body")
got=$(curl -s "$LIC_LINK" | cmp - "$WORK/www/bench-plugin.zip" && echo same)
[ "$got" = same ] || die "LIC: the download link does not give the pushed zip"
lic_check "$LIC_PATH" "$LIC_SITE"
jq -e '.license.code == "missing_key" and (has("download_link") | not)' "$WORK/check.body" >/dev/null \
  || { cat "$WORK/check.body" >&2; die "LIC: a check without a key was not refused"; }
lic_check "$LIC_ONE" "not-activated.example.com"
jq -e '.license.code == "site_inactive" and (has("download_link") | not)' "$WORK/check.body" >/dev/null \
  || { cat "$WORK/check.body" >&2; die "LIC: a check from another site was not refused"; }
lic_check "$LIC_ONE" "$LIC_SITE"
CHECK_BYTES+="/$(wc -c <"$WORK/check.body")"
fi

# The signed download links, from a check's download_link.
link_of() {
  check "$UP/v1/public/$PREFIX/plugins/$1"
  jq -r '.download_link' "$WORK/check.body"
}
DL10=$(link_of bench-10m)
DL100=$(link_of bench-100m)
case $DL10 in "$UP/dl/"*) ;; *) die "unexpected download link: $DL10" ;; esac
for pair in "$DL10 bench-10m" "$DL100 bench-100m"; do
  set -- $pair
  got=$(curl -s "$1" | cmp - "$WORK/www/$2.zip" && echo same)
  [ "$got" = same ] || die "upkeep's $2 download differs from the file"
  got=$(curl -s "http://127.0.0.1:$NGINX_PORT/$2.zip" | cmp - "$WORK/www/$2.zip" && echo same)
  [ "$got" = same ] || die "nginx's $2 differs from the file"
done
NGINX_DL10=http://127.0.0.1:$NGINX_PORT/bench-10m.zip
UPB=http://127.0.0.1:$UPKEEP_B_PORT
if [ -n "$UPKEEP_B" ]; then
  DL10_B=$UPB${DL10#"$UP"}
  DL100_B=$UPB${DL100#"$UP"}
  for pair in "$DL10_B bench-10m" "$DL100_B bench-100m"; do
    set -- $pair
    got=$(curl -s "$1" | cmp - "$WORK/www/$2.zip" && echo same)
    [ "$got" = same ] || die "UPKEEP_B's $2 download differs from the file"
  done
fi

RESULTS=()   # "label|req/s|p50|p99|non2xx|errors|MiB/s"
measure() {  # label, url, wrk args... (runs for $RUN_DURATION seconds, default DURATION)
  local label=$1 url=$2 r d=${RUN_DURATION:-$DURATION}
  shift 2
  log "measuring $label (${d} s)"
  r=$(run_wrk "$d" "$url" "$@")
  RESULTS+=("$label|${r// /|}")
}

# ---- 1. update checks ------------------------------------------------------------------
CHECK_RESULTS=()
RSS_AFTER_CHECKS=
if [ "$ONLY" != download ]; then
  log "warming up (${WARMUP} s each)"
  run_wrk "$WARMUP" "$HELLO_URL" >/dev/null
  for u in "$WU_URL" "$PUC_URL" "$EDD_URL"; do run_wrk "$WARMUP" "$u" >/dev/null; done
  run_wrk "$WARMUP" "$UP" -s benches/licensed-checks.lua -- "$WORK/lic.paths" >/dev/null
  run_wrk "$WARMUP" "$HELLO_URL" -s benches/licensed-checks.lua -- "$WORK/lic.paths" >/dev/null

  L_WU="GET /v1/public/{prefix}/plugins/{slug} (WU)"
  L_PUC="GET /updates/{prefix}/{slug}?installed_version=1.0.0 (PUC)"
  L_EDD="GET /edd/{prefix}/?edd_action=get_version&item_id=ID (EDD)"
  L_LIC="GET /v1/public/{prefix}/plugins/{slug}?key=K, licensed, $KEYS keys (LIC)"
  L_HELLO_LIC="hello, sent LIC's requests"
  RUN_DURATION=$CHECK_DURATION
  for ((round = 1; round <= CHECK_ROUNDS; round++)); do
    log "update checks: round $round of $CHECK_ROUNDS"
    measure hello "$HELLO_URL"
    measure "$L_WU" "$WU_URL"
    measure hello "$HELLO_URL"
    measure "$L_PUC" "$PUC_URL"
    measure hello "$HELLO_URL"
    measure "$L_EDD" "$EDD_URL"
    measure hello "$HELLO_URL"
    measure "$L_LIC" "$UP" -s benches/licensed-checks.lua -- "$WORK/lic.paths"
    measure hello "$HELLO_URL"
    # LIC again, beside the hello-world sent LIC's own requests by the same wrk script
    # (its Lua and the longer requests cost wrk and the parser CPU on the same cores).
    measure "$L_HELLO_LIC" "$HELLO_URL" -s benches/licensed-checks.lua -- "$WORK/lic.paths"
    measure "$L_LIC" "$UP" -s benches/licensed-checks.lua -- "$WORK/lic.paths"
    measure "$L_HELLO_LIC" "$HELLO_URL" -s benches/licensed-checks.lua -- "$WORK/lic.paths"
  done
  unset RUN_DURATION
  CHECK_RESULTS=("${RESULTS[@]}")
  RSS_AFTER_CHECKS=$(status_kb "$UPKEEP_PID" VmRSS)
fi

# ---- 2. the 10 MiB download ------------------------------------------------------------
RESULTS=()
run_wrk "$WARMUP" "$NGINX_DL10" >/dev/null
run_wrk "$WARMUP" "$DL10" >/dev/null
[ -z "$UPKEEP_B" ] || run_wrk "$WARMUP" "$DL10_B" >/dev/null
L_NGX="nginx: GET /bench-10m.zip (sendfile on)"
L_DL="upkeep: GET /dl/{token}/bench-10m.zip"
L_DLB="UPKEEP_B: GET /dl/{token}/bench-10m.zip"
measure "$L_NGX" "$NGINX_DL10"
for ((round = 1; round <= ROUNDS; round++)); do
  measure "$L_DL" "$DL10"
  measure "$L_NGX" "$NGINX_DL10"
  if [ -n "$UPKEEP_B" ]; then
    measure "$L_DLB" "$DL10_B"
    measure "$L_NGX" "$NGINX_DL10"
  fi
done
DL_RESULTS=("${RESULTS[@]}")
RSS_AFTER_DL=$(status_kb "$UPKEEP_PID" VmRSS)

# ---- 3. memory under 100 concurrent downloads of 100 MiB -------------------------------
# Arguments: pid, port, the signed URLs of the 10 and 100 MiB files. Leaves MEM_S,
# RSS_BEFORE, HWM_BEFORE, RSS_PEAK, HWM_AFTER, RSS_END, CONN_PEAK, OK_DOWNLOADS, GROWTH.
memory_run() {
  local mem_pid=$1 port=$2 dl10=$3 dl100=$4 sampler mem_started i pid
  curl -s -o /dev/null "$dl10"   # the download path once, so its code is paged in
  sleep 1
  RSS_BEFORE=$(status_kb "$mem_pid" VmRSS)
  HWM_BEFORE=$(status_kb "$mem_pid" VmHWM)
  : >"$WORK/mem.samples"
  rm -f "$WORK"/curl.*
  (
    while kill -0 "$mem_pid" 2>/dev/null; do
      conns=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
      echo "$(status_kb "$mem_pid" VmRSS) $conns" >>"$WORK/mem.samples"
      sleep 0.05
    done
  ) &
  sampler=$!
  PIDS+=("$sampler")
  mem_started=$(date +%s%N)
  local curls=()
  for i in $(seq 1 "$DOWNLOADS"); do
    curl -s -o /dev/null -w '%{http_code} %{size_download}\n' "$dl100" >"$WORK/curl.$i" &
    curls+=("$!")
  done
  for pid in "${curls[@]}"; do wait "$pid" || true; done
  MEM_S=$(awk -v ns=$(( $(date +%s%N) - mem_started )) 'BEGIN { printf "%.1f", ns / 1e9 }')
  sleep 0.2
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  RSS_END=$(status_kb "$mem_pid" VmRSS)
  HWM_AFTER=$(status_kb "$mem_pid" VmHWM)
  RSS_PEAK=$(awk 'BEGIN { m = 0 } $1 > m { m = $1 } END { print m }' "$WORK/mem.samples")
  CONN_PEAK=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$WORK/mem.samples")
  OK_DOWNLOADS=$(cat "$WORK"/curl.* | awk -v n=$((100 * 1024 * 1024)) '$1 == 200 && $2 == n' | wc -l)
  local peak=$(( HWM_AFTER > RSS_PEAK ? HWM_AFTER : RSS_PEAK ))
  GROWTH=$(( peak - RSS_BEFORE ))
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
memory_row() { # label: a table row of the last memory_run
  echo "| $1 | ${MEM_S} s | $OK_DOWNLOADS | $CONN_PEAK | $(mib "$RSS_BEFORE") | $(mib "$HWM_BEFORE") | $(mib "$RSS_PEAK") | $(mib "$HWM_AFTER") | $(mib "$RSS_END") | **$(mib "$GROWTH")** |"
}
if [ -n "$UPKEEP_B" ]; then
  stop_upkeep_b   # one server at a time takes the 100 downloads
fi
log "restarting upkeep (fresh VmHWM) for $DOWNLOADS concurrent downloads of 100 MiB"
stop_upkeep
start_upkeep
check "$WU_URL"
memory_run "$UPKEEP_PID" "$UPKEEP_PORT" "$DL10" "$DL100"
MEM_ROWS=("$(memory_row upkeep)")
GROWTH_A=$GROWTH
if [ -n "$UPKEEP_B" ]; then
  stop_upkeep
  log "starting UPKEEP_B afresh for $DOWNLOADS concurrent downloads of 100 MiB"
  start_upkeep_b
  memory_run "$UPKEEP_B_PID" "$UPKEEP_B_PORT" "$DL10_B" "$DL100_B"
  MEM_ROWS+=("$(memory_row UPKEEP_B)")
fi

# ---- report ----------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
ratio() { awk -v r="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.3f", r / ((a + b) / 2) }'; }
field() { # row, field number (1 = label)
  cut -d'|' -f"$2" <<<"$1"
}
mean_of() { # label, rows...: mean req/s of the rows with that label
  local label=$1
  shift
  printf '%s\n' "$@" | awk -F'|' -v l="$label" '$1 == l { s += $2; n++ } END { printf "%.1f", s / n }'
}

echo
echo "machine: $(nproc) cores, ${CPU:-unknown CPU}, $(uname -sr), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $("$NGINX" -v 2>&1 | sed 's/.*: //')"
echo "upkeep: $REV (at build), default configuration (request log on, to /dev/null); $(date -u '+%Y-%m-%d %H:%M UTC')${ONLY:+; ONLY=$ONLY}"
[ -z "$UPKEEP_B" ] || echo "UPKEEP_B: $UPKEEP_B (modified $(date -u -r "$UPKEEP_B" '+%Y-%m-%d %H:%M UTC')), on a copy of the same data directory"
echo "wrk --latency -t $THREADS -c $CONNECTIONS, ${CHECK_DURATION} s per check run (${CHECK_ROUNDS} rounds), ${DURATION} s per download run, 127.0.0.1; load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$ONLY" = download ]; then
  echo "VmRSS after the 10 MiB downloads: $((RSS_AFTER_DL / 1024)) MiB"
else
  echo "answer sizes (bytes, WU/PUC/EDD/LIC): $CHECK_BYTES; VmRSS after the checks: $((RSS_AFTER_CHECKS / 1024)) MiB, after the 10 MiB downloads: $((RSS_AFTER_DL / 1024)) MiB"
fi

if [ "$ONLY" != download ]; then
# Each round is 12 runs: hello WU hello PUC hello EDD hello LIC hello hello-LIC LIC hello-LIC.
PER_ROUND=12
echo
echo "Update checks (free product; LIC: licensed, $KEYS keys and activations in the store):"
echo
echo "| run | req/s | p50 ms | p99 ms | vs hello beside it | vs WU (its round's) |"
echo "|---|---:|---:|---:|---:|---:|"
n=${#CHECK_RESULTS[@]}
for ((i = 0; i < n; i++)); do
  IFS='|' read -r label rps p50 p99 bad errs _ <<<"${CHECK_RESULTS[$i]}"
  r1= r2=
  if [ "${label#hello}" = "$label" ]; then
    r1="$(ratio "$rps" "$(field "${CHECK_RESULTS[$((i - 1))]}" 2)" "$(field "${CHECK_RESULTS[$((i + 1))]}" 2)")×"
    wu=$(field "${CHECK_RESULTS[$((i / PER_ROUND * PER_ROUND + 1))]}" 2)
    [ "$label" != "$L_WU" ] && [ "$label" != "$L_LIC" ] && r2="$(awk -v r="$rps" -v w="$wu" 'BEGIN { printf "%.3f", r / w }')×"
  fi
  note=
  [ "$bad" != 0 ] && note+=" **$bad non-2xx**"
  [ "$errs" != - ] && note+=" (socket errors: $errs)"
  printf '| %s%s | %s | %s | %s | %s | %s |\n' "$label" "$note" "$rps" "$p50" "$p99" "$r1" "$r2"
done
fi

echo
echo "The 10 MiB download (10,485,760 bytes, the same file):"
echo
echo "| run | req/s | MiB/s | p50 ms | p99 ms | vs nginx beside it |"
echo "|---|---:|---:|---:|---:|---:|"
n=${#DL_RESULTS[@]}
for ((i = 0; i < n; i++)); do
  IFS='|' read -r label rps p50 p99 bad errs tps <<<"${DL_RESULTS[$i]}"
  r1=
  if [ "$label" = "$L_DL" ] || [ "$label" = "$L_DLB" ]; then
    r1="$(ratio "$rps" "$(field "${DL_RESULTS[$((i - 1))]}" 2)" "$(field "${DL_RESULTS[$((i + 1))]}" 2)")×"
  fi
  note=
  [ "$bad" != 0 ] && note+=" **$bad non-2xx**"
  [ "$errs" != - ] && note+=" (socket errors: $errs)"
  printf '| %s%s | %s | %s | %s | %s | %s |\n' "$label" "$note" "$rps" "$tps" "$p50" "$p99" "$r1"
done
DL_RATIO=$(awk -v u="$(mean_of "$L_DL" "${DL_RESULTS[@]}")" -v g="$(mean_of "$L_NGX" "${DL_RESULTS[@]}")" \
  'BEGIN { printf "%.3f", u / g }')
# The median of one binary's per-run ratios (each over the nginx runs beside it).
median_ratio() { # label
  local n=${#DL_RESULTS[@]} i
  for ((i = 1; i < n - 1; i++)); do
    [ "$(field "${DL_RESULTS[$i]}" 1)" = "$1" ] || continue
    ratio "$(field "${DL_RESULTS[$i]}" 2)" "$(field "${DL_RESULTS[$((i - 1))]}" 2)" "$(field "${DL_RESULTS[$((i + 1))]}" 2)"
    echo
  done | sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo
echo "upkeep over nginx, means of all runs: ${DL_RATIO}× (median of the per-run ratios: $(median_ratio "$L_DL")×)"
if [ -n "$UPKEEP_B" ]; then
  DL_RATIO_B=$(awk -v u="$(mean_of "$L_DLB" "${DL_RESULTS[@]}")" -v g="$(mean_of "$L_NGX" "${DL_RESULTS[@]}")" \
    'BEGIN { printf "%.3f", u / g }')
  echo "UPKEEP_B over nginx, means of all runs: ${DL_RATIO_B}× (median of the per-run ratios: $(median_ratio "$L_DLB")×)"
fi

echo
echo "$DOWNLOADS concurrent downloads of 100 MiB ($DOWNLOADS × curl -o /dev/null; complete = 200 and every byte):"
echo
echo "| server | took | complete | most connections at once | VmRSS before | VmHWM before | peak VmRSS sampled (50 ms) | VmHWM after | VmRSS after | growth (peak − before) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${MEM_ROWS[@]}"
GROWTH=$GROWTH_A

verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
  ok = (op == ">=") ? (v >= t) : (v < t);
  print ok ? "met" : "MISSED" }'; }
if [ "$ONLY" = download ]; then
  echo
  echo "Targets:"
  echo
  echo "| target | result | |"
  echo "|---|---|---|"
  echo "| 10 MiB download ≥ 0.8× nginx | ${DL_RATIO}× | $(verdict "$DL_RATIO" 0.8 '>=') |"
  echo "| $DOWNLOADS × 100 MiB downloads: RSS growth < 64 MiB | $(mib "$GROWTH") | $(verdict "$GROWTH" 65536 '<') |"
  exit 0
fi
# Per round: each ratio over the runs beside it (hello), or over the round's WU.
rps_at() { field "${CHECK_RESULTS[$1]}" 2; }
beside() { ratio "$(rps_at "$1")" "$(rps_at $(($1 - 1)))" "$(rps_at $(($1 + 1)))"; }
over_wu() { awk -v r="$(rps_at "$1")" -v w="$(rps_at "$2")" 'BEGIN { printf "%.3f", r / w }'; }
WU_R=() PUC_R=() EDD_R=() LIC_R=() LIC_SAME_R=()
for ((b = 0; b < ${#CHECK_RESULTS[@]}; b += PER_ROUND)); do
  WU_R+=("$(beside $((b + 1)))")
  PUC_R+=("$(over_wu $((b + 3)) $((b + 1)))")
  EDD_R+=("$(over_wu $((b + 5)) $((b + 1)))")
  LIC_R+=("$(beside $((b + 7)))")
  LIC_SAME_R+=("$(beside $((b + 10)))")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
runs() { local IFS=,; echo "$*" | sed 's/,/×, /g; s/$/×/'; }
WU_RATIO=$(median "${WU_R[@]}")
PUC_VS=$(median "${PUC_R[@]}")
EDD_VS=$(median "${EDD_R[@]}")
LIC_RATIO=$(median "${LIC_R[@]}")
LIC_RATIO_SAME=$(median "${LIC_SAME_R[@]}")
echo
echo "Targets:"
echo
echo "| target | result | |"
echo "|---|---|---|"
echo "| WU check ≥ 0.8× hello | median ${WU_RATIO}× (rounds: $(runs "${WU_R[@]}")) | $(verdict "$WU_RATIO" 0.8 '>=') |"
echo "| PUC within 10 % of WU (≥ 0.9×) | median ${PUC_VS}× (rounds: $(runs "${PUC_R[@]}")) | $(verdict "$PUC_VS" 0.9 '>=') |"
echo "| EDD within 10 % of WU (≥ 0.9×) | median ${EDD_VS}× (rounds: $(runs "${EDD_R[@]}")) | $(verdict "$EDD_VS" 0.9 '>=') |"
echo "| 10 MiB download ≥ 0.8× nginx | ${DL_RATIO}× | $(verdict "$DL_RATIO" 0.8 '>=') |"
echo "| $DOWNLOADS × 100 MiB downloads: RSS growth < 64 MiB | $(mib "$GROWTH") | $(verdict "$GROWTH" 65536 '<') |"
echo "| licensed check ($KEYS keys and activations) ≥ 0.7× hello, the hello sent the same requests by the same wrk script | median ${LIC_RATIO_SAME}× (rounds: $(runs "${LIC_SAME_R[@]}")) | $(verdict "$LIC_RATIO_SAME" 0.7 '>=') |"
echo "| licensed check ($KEYS keys and activations) ≥ 0.7× hello, the plain hello runs beside it | median ${LIC_RATIO}× (rounds: $(runs "${LIC_R[@]}")) | $(verdict "$LIC_RATIO" 0.7 '>=') |"
