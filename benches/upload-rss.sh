#!/usr/bin/env bash
# Memory of a large upload and download (issue 11): does the server's resident memory stay
# flat while a 256 MiB file streams in and out?
#
#   benches/upload-rss.sh                 # 256 MiB (the default upload limit)
#   SIZE_MIB=64 benches/upload-rss.sh     # smaller
#   MODE=multipart benches/upload-rss.sh  # the same file as a multipart/form-data part
#   SKIP_BUILD=1 benches/upload-rss.sh    # measure the release binary already built
#
# Builds release, makes a data directory with an account and an `api` token (CLI), starts
# `upkeep serve`, creates a product and a draft version (API), and then:
#   1. baseline: VmRSS after start-up and a small warm-up upload and download;
#   2. resets the process's peak RSS (`echo 5 > /proc/PID/clear_refs`, so VmHWM restarts
#      from the current RSS), uploads SIZE_MIB of random bytes with
#      `curl --data-binary @file` (raw `application/octet-stream`, or MODE=multipart:
#      `curl -F file=@file`) to `POST /api/v1/versions/{id}/files`, sampling VmRSS every
#      20 ms meanwhile; reads VmHWM (the kernel's peak, which no sampling can miss);
#   3. resets the peak again, downloads the file (`GET /api/v1/files/{id}/content`, curl to
#      a file), samples and reads the peak the same way;
#   4. checks the file's size and blake3 (the server's record, the downloaded copy and the
#      original must agree) and prints the figures.
#
# Growth = the phase's peak (VmHWM, or a higher sampled VmRSS) − the baseline VmRSS.
# Target: < 32 MiB.
# blake3 of the local files: `b3sum` if installed, else the `blake3` package (PyPI) in a
# venv under target/. Traffic goes to 127.0.0.1 only; everything started here is stopped
# on exit and the temporary directory deleted.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-256}
MODE=${MODE:-raw}
TARGET_MIB=32
TARGET_DIR=${CARGO_TARGET_DIR:-target}

log() { printf '%s\n' "upload-rss.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [ -z "${SKIP_BUILD:-}" ]; then
  log "building release"
  cargo build --release --bin upkeep >&2
fi
UPKEEP=$TARGET_DIR/release/upkeep
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
git status --porcelain -- src 2>/dev/null | grep -q . && REV+=" + uncommitted changes in src/" || true

if command -v b3sum >/dev/null; then
  b3() { b3sum --no-names "$1"; }
else
  VENV=$TARGET_DIR/upload-rss-venv
  if ! "$VENV/bin/python" -c 'import blake3' 2>/dev/null; then
    log "installing blake3 (PyPI) into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'blake3==1.0.*' >&2
  fi
  b3() {
    "$VENV/bin/python" -c 'import blake3, sys
h = blake3.blake3(max_threads=1)
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())' "$1"
  }
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-upload-rss.XXXXXX")
DATA=$WORK/data
UPKEEP_PID=
SAMPLER_PID=
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  if [ -n "$UPKEEP_PID" ]; then
    kill "$UPKEEP_PID" 2>/dev/null || true
    wait "$UPKEEP_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$UPKEEP" --data "$DATA" init >/dev/null
"$UPKEEP" --data "$DATA" account create --name 'RSS Vendor' --email rss@example.com --prefix rss >/dev/null
TOKEN=$("$UPKEEP" --data "$DATA" --json token create --account rss --name rss --scopes api | jq -r .token)

RUST_LOG=warn,upkeep::listening=info "$UPKEEP" serve --listen 127.0.0.1:0 --log-format json \
  --data "$DATA" 2>"$WORK/serve.log" &
UPKEEP_PID=$!
ADDR=
for _ in $(seq 300); do
  ADDR=$(sed -n 's/.*"message":"upkeep listening".*"listen":"\([^"]*\)".*/\1/p' "$WORK/serve.log" | head -n 1)
  [ -n "$ADDR" ] && break
  kill -0 "$UPKEEP_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ADDR" ] || { cat "$WORK/serve.log" >&2; die "upkeep serve did not start"; }
BASE=http://$ADDR
AUTH="authorization: Bearer $TOKEN"

api() { # api METHOD PATH [curl args…]: the JSON answer; fails on a non-2xx
  local method=$1 path=$2
  shift 2
  curl -sS --fail-with-body -X "$method" -H "$AUTH" "$@" "$BASE$path"
}

kib() { awk -v k="$1" '/^'"$1"':/ {print $2}' "/proc/$UPKEEP_PID/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
reset_peak() { echo 5 >"/proc/$UPKEEP_PID/clear_refs"; }
sample() { # sample FILE: VmRSS (KiB) every 20 ms until killed
  while :; do
    awk '/^VmRSS:/ {print $2}' "/proc/$UPKEEP_PID/status" >>"$1" 2>/dev/null || return 0
    sleep 0.02
  done
}
max_of() { sort -n "$1" | tail -n 1; }

PRODUCT=$(api POST /api/v1/products -H 'content-type: application/json' \
  -d '{"slug":"rss-plugin","kind":"plugin","name":"RSS plugin"}' | jq -r .data.id)
VERSION=$(api POST "/api/v1/products/$PRODUCT/versions" -H 'content-type: application/json' \
  -d '{"version":"1.0.0"}' | jq -r .data.id)

log "writing $SIZE_MIB MiB of random bytes"
FILE=$WORK/upload.bin
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$FILE"
SIZE=$(stat -c %s "$FILE")
HASH=$(b3 "$FILE")

# Warm-up: the first upload and download touch code paths, the blob directories and sled
# pages once; the baseline is taken after them.
head -c 1048576 /dev/urandom >"$WORK/warm.bin"
WARM=$(api POST "/api/v1/versions/$VERSION/files?name=warm" \
  -H 'content-type: application/octet-stream' --data-binary @"$WORK/warm.bin" | jq -r .data.id)
api GET "/api/v1/files/$WARM/content" -o /dev/null
BASE_RSS=$(kib VmRSS)
log "baseline VmRSS $(mib "$BASE_RSS") MiB"

phase() { # phase NAME COMMAND…: runs it while sampling; writes
  # "peak_hwm max_sampled after elapsed_ms samples" to $WORK/NAME.result
  local name=$1 started
  shift
  reset_peak
  : >"$WORK/$name.samples"
  sample "$WORK/$name.samples" >/dev/null 2>&1 &
  SAMPLER_PID=$!
  started=$(date +%s%N)
  "$@" || die "$name failed: $(cat "$WORK/$name.json" 2>/dev/null)"
  local elapsed=$((($(date +%s%N) - started) / 1000000))
  kill "$SAMPLER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=
  echo "$(kib VmHWM) $(max_of "$WORK/$name.samples") $(kib VmRSS) $elapsed $(wc -l <"$WORK/$name.samples")" >"$WORK/$name.result"
}

upload() {
  if [ "$MODE" = multipart ]; then
    api POST "/api/v1/versions/$VERSION/files" -F name=big -F "file=@$FILE;type=application/octet-stream" >"$WORK/upload.json"
  else
    api POST "/api/v1/versions/$VERSION/files?name=big" \
      -H 'content-type: application/octet-stream' --data-binary @"$FILE" >"$WORK/upload.json"
  fi
}
download() { api GET "/api/v1/files/$(jq -r .data.id "$WORK/upload.json")/content" -o "$WORK/download.bin" >"$WORK/download.json"; }

log "uploading ($MODE)"
phase upload upload
read -r UP_HWM UP_MAX UP_AFTER UP_SECS UP_N <"$WORK/upload.result"
log "downloading"
phase download download
read -r DOWN_HWM DOWN_MAX DOWN_AFTER DOWN_SECS DOWN_N <"$WORK/download.result"

REC_HASH=$(jq -r .data.blake3 "$WORK/upload.json")
REC_SIZE=$(jq -r .data.size "$WORK/upload.json")
DOWN_HASH=$(b3 "$WORK/download.bin")
DOWN_SIZE=$(stat -c %s "$WORK/download.bin")
[ "$REC_HASH" = "$HASH" ] && [ "$REC_SIZE" = "$SIZE" ] ||
  die "the record says $REC_HASH ($REC_SIZE bytes), the file is $HASH ($SIZE bytes)"
[ "$DOWN_HASH" = "$HASH" ] && [ "$DOWN_SIZE" = "$SIZE" ] ||
  die "downloaded $DOWN_HASH ($DOWN_SIZE bytes), uploaded $HASH ($SIZE bytes)"

# The kernel's VmHWM is kept from per-thread counters that are synced lazily, so a sample
# can read a little above it: the peak is the larger of the two.
UP_PEAK=$((UP_HWM > UP_MAX ? UP_HWM : UP_MAX))
DOWN_PEAK=$((DOWN_HWM > DOWN_MAX ? DOWN_HWM : DOWN_MAX))
UP_GROWTH=$((UP_PEAK - BASE_RSS))
DOWN_GROWTH=$((DOWN_PEAK - BASE_RSS))
PEAK=$((UP_GROWTH > DOWN_GROWTH ? UP_GROWTH : DOWN_GROWTH))
cat <<EOF
upload-rss ($REV, $(nproc) cores, $MODE upload of $SIZE_MIB MiB = $SIZE bytes)
  blake3 $HASH: record, original and download agree
  baseline VmRSS                $(mib "$BASE_RSS") MiB
  upload    ($UP_SECS ms, $UP_N samples)  peak VmHWM $(mib "$UP_HWM") MiB, max sampled VmRSS $(mib "$UP_MAX") MiB, after $(mib "$UP_AFTER") MiB: growth $(mib "$UP_GROWTH") MiB
  download  ($DOWN_SECS ms, $DOWN_N samples)  peak VmHWM $(mib "$DOWN_HWM") MiB, max sampled VmRSS $(mib "$DOWN_MAX") MiB, after $(mib "$DOWN_AFTER") MiB: growth $(mib "$DOWN_GROWTH") MiB
  peak growth $(mib "$PEAK") MiB (target < $TARGET_MIB MiB)
EOF
if [ "$PEAK" -ge $((TARGET_MIB * 1024)) ]; then
  log "peak growth $(mib "$PEAK") MiB is over the $TARGET_MIB MiB target"
  exit 1
fi
