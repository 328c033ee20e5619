#!/usr/bin/env bash
# Fuzzes a real `upkeep serve` against its own OpenAPI document (GET /openapi.json) with
# schemathesis (PyPI): every operation, with generated valid and invalid requests, must
# give no server error (5xx, dropped connection) and no response the document does not
# describe (status, content type, headers, body schema). CI runs it after `cargo test`.
#
# Needs python3 with the venv module (Debian: python3-venv) and PyPI; schemathesis is
# installed once into target/schemathesis-venv. Knobs (environment):
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 100)
#   SCHEMATHESIS_SEED          reproduce a run (the seed is printed in each summary)
#   SCHEMATHESIS_TIME_LIMIT    hard limit per run in seconds (default 600)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
TIME_LIMIT="${SCHEMATHESIS_TIME_LIMIT:-600}"
VENV="$PWD/target/schemathesis-venv"
ST="$VENV/bin/st"
ST_HOME="$PWD/target/schemathesis"
BIN="$PWD/target/debug/upkeep"
HOOKS="$PWD/packaging/schemathesis_hooks.py"
started=$SECONDS

if [ "$("$ST" --version 2>/dev/null || true)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  echo "--- installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "--- cargo build --bin upkeep"
cargo build --quiet --bin upkeep
mkdir -p "$ST_HOME"

WORK="$(mktemp -d)"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DATA="$WORK/data"
json_field() { # json_field EXPR < json: prints data[EXPR]
  python3 -c "import json, sys; print(json.load(sys.stdin)$1)"
}

# Credentials, made with the CLI before the server holds the store. The names are ones the
# fuzzer will not guess, so that it does not delete or deactivate the tokens it runs with.
"$BIN" --data "$DATA" init >/dev/null   # only init and serve create a data directory
OPERATOR_TOKEN="$("$BIN" --data "$DATA" --json operator-token create --name schemathesis-operator | json_field '["token"]')"
ACCOUNT_TOKEN="$("$BIN" --data "$DATA" --json account create --name 'Schemathesis Vendor' --email st@example.com --prefix acme | json_field '["token"]["token"]')"
# Rotating replaces the calling token's secret, which would end a run that uses it: the
# rotate operation gets a token of its own, and a run of its own.
ROTATE_TOKEN="$("$BIN" --data "$DATA" --json token create --account acme --name schemathesis-rotate --scopes read_user | json_field '["token"]')"
# The account's first token is named \`default\`, a name the fuzzer does guess: the token
# deletions (by name) get victims of their own, or one could end the run's authentication.
"$BIN" --data "$DATA" token create --account acme --name st-victim-token --scopes read_user >/dev/null
"$BIN" --data "$DATA" token create --account acme --name st-victim-account-token --scopes read_user >/dev/null

# Failed-authentication throttling is off (`--auth-failures-per-minute 0`): schemathesis
# sends many missing and invalid tokens on purpose (its `ignored_auth` check and negative
# cases) from 127.0.0.1, and the 20/min default would turn the rest of the run into 429s.
echo "--- upkeep serve"
RUST_LOG=warn,upkeep::listening=info "$BIN" serve --listen 127.0.0.1:0 --log-format json \
  --data "$DATA" --auth-failures-per-minute 0 2>"$WORK/serve.log" &
SERVER_PID=$!
ADDR=
for _ in $(seq 300); do
  ADDR="$(sed -n 's/.*"message":"upkeep listening".*"listen":"\([^"]*\)".*/\1/p' "$WORK/serve.log" | head -n 1)"
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ADDR" ]; then
  echo "upkeep serve did not start:" >&2
  cat "$WORK/serve.log" >&2
  exit 1
fi
URL="http://$ADDR/openapi.json"
echo "serving on $ADDR"

# Catalogue records (SPEC §7.1), made with the account token before the run: their ids are
# random, so without them every `{id}` operation would only ever see 404s. Each operation
# on a single record gets a real id (`parameters` below); the deletions get victims of their
# own (their first success deletes it, later cases are 404s); the uploads go to a draft
# version of their own (`create_file`) and to a file of it (`replace_file_content`), so that
# `update_version` publishing the other draft does not turn them into 409s.
api() { # api METHOD PATH [curl args…]: the JSON answer; exits on a non-2xx
  curl -sS --fail-with-body -X "$1" -H "x-api-key: $ACCOUNT_TOKEN" "${@:3}" "http://$ADDR$2"
}
json_api() { api "$1" "$2" -H 'content-type: application/json' -d "$3" | json_field '["data"]["id"]'; }
raw_file() { # raw_file VERSION NAME: uploads a few bytes as a file of VERSION; prints its id
  printf 'schemathesis %s\n' "$2" | api POST "/api/v1/versions/$1/files?name=$2" \
    -H 'content-type: application/octet-stream' --data-binary @- | json_field '["data"]["id"]'
}
GROUP=$(json_api POST /api/v1/groups '{"name":"st-group"}')
VICTIM_GROUP=$(json_api POST /api/v1/groups '{"name":"st-victim-group"}')
PRODUCT=$(json_api POST /api/v1/products '{"slug":"st-product","kind":"plugin","name":"ST product"}')
VICTIM_PRODUCT=$(json_api POST /api/v1/products '{"slug":"st-victim","name":"ST victim"}')
VERSION=$(json_api POST "/api/v1/products/$PRODUCT/versions" '{"version":"1.0.0"}')
UPLOAD_VERSION=$(json_api POST "/api/v1/products/$PRODUCT/versions" '{"version":"1.1.0"}')
VICTIM_VERSION=$(json_api POST "/api/v1/products/$PRODUCT/versions" '{"version":"0.1.0"}')
FILE=$(raw_file "$VERSION" Installer)
VICTIM_FILE=$(raw_file "$VERSION" Extra)
UPLOAD_FILE=$(raw_file "$UPLOAD_VERSION" Upload)
# The WunderUpdates family (SPEC §7.2) sees the same catalogue by slug: its deletions get
# victims of their own too, or \`DELETE /v1/plugins/st-product\` (a slug the stateful phase
# finds in \`list_plugins\`) would delete the product above and turn the rest of the run's
# uploads into 404s.
api POST /v1/plugins -H 'content-type: application/json' -d '{"slug":"st-victim-plugin"}' >/dev/null
api POST /v1/themes -H 'content-type: application/json' -d '{"slug":"st-victim-theme"}' >/dev/null
echo "catalogue: group $GROUP, product $PRODUCT, versions $VERSION (upload $UPLOAD_VERSION), files $FILE (upload $UPLOAD_FILE)"

# One config per credential: which security scheme of the document carries the token.
write_config() { # write_config FILE SCHEME FIELD
  cat >"$1" <<EOF
[auth.openapi.$2]
$3 = "\${ST_UPKEEP_TOKEN}"

# positive_data_acceptance: a request the document calls valid must not get a 400. It does
# where validity is more than a schema can say — a license key must exist, dates must lie
# in the future, \`expires_in\`/\`grace\` must be humantime durations — and where a JSON
# integer is spelled as a whole float (\`47.0\`): JSON Schema calls that an integer, serde
# does not; and lists, whose \`cursor\` must be one the server returned (opaque: a
# well-formed string the server never issued is refused). For those operations a 400
# (documented in each) is accepted.
#
# The catalogue (SPEC §7) adds its own such rules: a version must be one that semver and
# PHP order alike (\`invalid_version\`), an upload to a release must be a readable WordPress
# zip (\`invalid_package\`; schemathesis generates arbitrary bytes), an uploaded file must
# not be empty, a file name is limited in bytes (the schema can only count characters), a
# URL must be http(s), slugs and names unique (409), and a version keeps one primary file
# (\`update_file\` with \`primary: false\` on it is a 400).
#
# WunderUpdates (SPEC §7.2) likewise: its lists take only cursors they returned; a release
# must be a non-empty WordPress zip; a static key's \`expires\` must be a real date (the
# pattern admits \`9999-99-99\`); a version in a path must be one the catalogue accepts
# (\`invalid_version\`); slugs have rules of their own.
#
# Customer licensing (SPEC §9): its lists take only cursors they returned; an email must be
# 3–254 characters once trimmed, with one \`@\` and no whitespace; a download key's
# \`customer_id\` must be a customer's id (a string form must be digits), \`expires_in\` a
# humantime duration, \`expires_at\` in the future; the key settings' \`uuid4\` generator
# takes no \`alphabet\`/\`segments\`/\`segment_len\` (the schema cannot tie fields together).
#
# The public UpdaterCloud download-key routes (SPEC §9.2) answer 400 \`missing_key\` in
# UpdaterCloud's shape when no key comes: it may come as \`download_key\` or as
# \`license_key\`, so the document can mark neither required.
[[operations]]
include-operation-id = ["apply_account_license", "create_account_token", "create_token", "rotate_self", "create_operator_token", "update_operator_token", "issue_license", "revoke_license", "list_account_tokens", "list_tokens", "list_operator_tokens", "list_accounts", "list_licenses", "list_groups", "list_products", "list_versions", "list_files", "create_product", "update_product", "duplicate_product", "create_version", "update_version", "release", "release_product", "create_file", "replace_file_content", "update_file", "list_plugins", "list_themes", "create_plugin", "update_plugin", "create_theme", "update_theme", "release_plugin_version", "release_theme_version", "delete_plugin_version", "delete_theme_version", "add_plugin_key", "add_theme_key", "replace_plugin_keys", "replace_theme_keys", "list_customers", "create_customer", "update_customer", "list_download_keys", "generate_download_key", "update_download_key", "list_activations", "put_download_key_settings", "uc_key_check", "uc_key_check_post", "uc_key_activate", "uc_key_activate_post", "uc_key_deactivate", "uc_key_deactivate_post", "uc_key_activations"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

# Lemon Squeezy's license API (SPEC §9.2) answers in its own statuses: 422 when
# \`license_key\` (or, to deactivate, \`instance_id\`) is missing — Lemon Squeezy's clients
# send a form where every field is optional, so the document keeps them optional — and 400
# for a malformed one.
[[operations]]
include-operation-id = ["ls_activate", "ls_default_activate", "ls_validate", "ls_default_validate", "ls_deactivate", "ls_default_deactivate"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "422", "429"]

# EDD (SPEC §8.2, §9.2) always answers 200, whatever the request: its clients read only the
# body. A request the document calls invalid (a prefix that is not one, such as
# \`null,null\`) is therefore answered 200 \`{"success":false,…}\`, not a 4xx. (\`enabled = false\`
# would not do: \`--checks all\` on the command line wins over it.)
[[operations]]
include-operation-id = ["edd", "edd_post", "root_post"]
checks.negative_data_rejection.expected-statuses = ["200", "400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429"]

# Uploads: a multipart text field is text whatever JSON it happens to spell (\`description\`
# = \`[1, 2]\` is the description "[1, 2]"), and query parameters an upload does not read are
# ignored, so schemathesis's "invalid" multipart fields and extra query parameters are
# answered like valid ones. Every upload's own validation (empty file, file name, package)
# still answers 400, which this list keeps.
[[operations]]
include-operation-id = ["create_file", "replace_file_content", "release", "release_product", "release_plugin_version", "release_theme_version"]
checks.negative_data_rejection.expected-statuses = ["2xx", "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# The replaced static key list's \`maxItems\` is only reached by a body over the 64 KiB JSON
# limit: a list one item too long is refused with 413 before it is read.
[[operations]]
include-operation-id = ["replace_plugin_keys", "replace_theme_keys"]
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# Real catalogue ids (made above) for the operations on one record.
[[operations]]
include-operation-id = ["get_group", "update_group"]
parameters = { "path.id" = "$GROUP" }
[[operations]]
include-operation-id = ["delete_group"]
parameters = { "path.id" = "$VICTIM_GROUP" }
[[operations]]
include-operation-id = ["get_product", "update_product", "duplicate_product", "get_channels", "list_versions", "create_version", "release_product"]
parameters = { "path.id" = "$PRODUCT" }
[[operations]]
include-operation-id = ["delete_product"]
parameters = { "path.id" = "$VICTIM_PRODUCT" }
[[operations]]
include-operation-id = ["get_version", "update_version", "list_files"]
parameters = { "path.id" = "$VERSION" }
[[operations]]
include-operation-id = ["create_file"]
parameters = { "path.id" = "$UPLOAD_VERSION" }
[[operations]]
include-operation-id = ["delete_version"]
parameters = { "path.id" = "$VICTIM_VERSION" }
[[operations]]
include-operation-id = ["get_file", "update_file", "download_file"]
parameters = { "path.id" = "$FILE" }
[[operations]]
include-operation-id = ["replace_file_content"]
parameters = { "path.id" = "$UPLOAD_FILE" }
[[operations]]
include-operation-id = ["delete_file"]
parameters = { "path.id" = "$VICTIM_FILE" }
[[operations]]
include-operation-id = ["delete_token"]
parameters = { "path.name" = "st-victim-token" }
[[operations]]
include-operation-id = ["delete_account_token"]
parameters = { "path.name" = "st-victim-account-token" }
[[operations]]
include-operation-id = ["delete_plugin", "delete_plugin_version"]
parameters = { "path.slug" = "st-victim-plugin" }
[[operations]]
include-operation-id = ["delete_theme", "delete_theme_version"]
parameters = { "path.slug" = "st-victim-theme" }
EOF
}
write_config "$WORK/account.toml" ApiKeyAuth api_key
write_config "$WORK/bearer.toml" BearerAuth bearer

failed=()
runs=0
run() { # run NAME CONFIG TOKEN [st run options…]
  local name=$1 config=$2 token=$3
  shift 3
  runs=$((runs + 1))
  echo "--- schemathesis: $name"
  local seed=()
  if [ -n "${SCHEMATHESIS_SEED:-}" ]; then seed=(--seed "$SCHEMATHESIS_SEED"); fi
  # schemathesis keeps its crash cache in ./.schemathesis: run it from under target/.
  # One worker: with two, Python 3.11's ast.parse (hypothesis describing its filters from
  # two threads) can fail with "AST constructor recursion depth mismatch".
  # The hooks drop one kind of generated case that SPEC §3 makes valid (see the file).
  if ! (cd "$ST_HOME" && ST_UPKEEP_TOKEN="$token" SCHEMATHESIS_HOOKS="$HOOKS" timeout "$TIME_LIMIT" "$ST" \
    --config-file "$config" run "$URL" \
    --checks all --max-examples "$MAX_EXAMPLES" --request-timeout 10 --workers 1 \
    --no-color --report har --report-har-path "$ST_HOME/$name.har" "${seed[@]}" "$@"); then
    failed+=("$name")
  fi
}

# Every operation: schemathesis leaves out the document's own path (/openapi.json) unless a
# filter names it.
ALL=(--include-path-regex '^/')
# With an account token (x-api-key): the account families succeed, /_/ and /metrics are 403.
run "account token" "$WORK/account.toml" "$ACCOUNT_TOKEN" "${ALL[@]}" --exclude-operation-id rotate_self
# With an operator token (Bearer): /_/ and /metrics succeed, the account families are 403.
run "operator token" "$WORK/bearer.toml" "$OPERATOR_TOKEN" "${ALL[@]}"
# Rotation, with the token it rotates (the document's example asks for a grace period, so
# the old secret goes on working for the rest of the run).
run "rotate" "$WORK/bearer.toml" "$ROTATE_TOKEN" --include-operation-id rotate_self

# What the uploads got (from the account token run's HAR file): requests per operation,
# body type and status, so that a run that never sent a multipart or raw body shows it.
echo "--- uploads sent (account token run): operation, content type, status: requests"
python3 - "$ST_HOME/account token.har" <<'PY' || true
import collections, json, re, sys
ops = [("POST", r"/api/v1/releases$", "release"),
       ("POST", r"/api/v1/products/[^/]+/releases$", "release_product"),
       ("POST", r"/api/v1/versions/[^/]+/files$", "create_file"),
       ("PUT", r"/api/v1/files/[^/]+/content$", "replace_file_content")]
counts = collections.Counter()
for entry in json.load(open(sys.argv[1]))["log"]["entries"]:
    request = entry["request"]
    path = re.sub(r"^https?://[^/]+", "", request["url"]).split("?")[0]
    for method, pattern, name in ops:
        if request["method"] == method and re.search(pattern, path):
            types = [h["value"] for h in request["headers"] if h["name"].lower() == "content-type"]
            kind = types[0].split(";")[0] if types else "(none)"
            counts[(name, kind, entry["response"]["status"])] += 1
for (name, kind, status), n in sorted(counts.items()):
    print(f"  {name:22} {kind:35} {status}: {n}")
PY

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  failed+=("server exited during the run")
fi
# A panic drops the connection and a 5xx is logged: either is a server error.
if grep -q '"level":"ERROR"' "$WORK/serve.log"; then
  echo "--- server errors logged:" >&2
  grep '"level":"ERROR"' "$WORK/serve.log" | head -n 20 >&2
  failed+=("server logged errors")
fi

echo "--- schemathesis finished in $((SECONDS - started)) s"
checks=$((runs + 2)) # each run, the server still up, its log free of errors
if [ ${#failed[@]} -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}" >&2
  echo "schemathesis: $((checks - ${#failed[@]})) passed, ${#failed[@]} failed"
  exit 1
fi
echo "no server errors, no responses that contradict the document"
echo "schemathesis: $checks passed, 0 failed"
