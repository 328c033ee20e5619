#!/usr/bin/env bash
# Builds the Debian package (packaging/build-deb.sh) and checks it on this machine, as root:
#   1. the .deb's control data and file list, and its maintainer scripts;
#   2. `systemd-analyze security --offline=true` on the unit it ships: fails above 2.0;
#   3. `dpkg -i`: files, conffile, user, /var/lib/upkeep (0700), enable symlink,
#      `upkeep --version`; the service itself only when systemd is PID 1 (said otherwise);
#   4. the installed binary run as the user `upkeep` with the shipped environment file
#      (every documented default switched on): /healthz, READY=1/STOPPING=1 on a fake
#      $NOTIFY_SOCKET, admin commands through admin.sock as upkeep and as root, SIGTERM;
#   5. an upgrade to a newer revision keeps the data, the user and an edited conffile;
#   6. `dpkg -r` keeps the data, the user and /etc/default/upkeep; `dpkg -P` removes them.
# Rerunnable: it purges the package and removes what it made on every exit, pass or fail.
# Called by .ci/run. Needs root and Debian's apt (installs systemd, adduser, curl if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=upkeep
STATE=/var/lib/upkeep
UNIT=/usr/lib/systemd/system/upkeep.service
DEFAULTS=/etc/default/upkeep
MAX_EXPOSURE=2.0

passed=0
skipped=0
say() { echo "--- check: $*"; }
ok() {
  echo "ok: $*"
  passed=$((passed + 1))
}
skip() {
  echo "--- check: SKIPPED: $*"
  skipped=$((skipped + 1))
}
fail() {
  echo "check: FAIL: $*" >&2
  exit 1
}
pkg_status() { dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null || true; }
file_mode() { stat -c '%a %U:%G' "$1"; }

[ "$(id -u)" = 0 ] || fail "run me as root: I install and purge the package"

tmp="$(mktemp -d /tmp/upkeep-check.XXXXXX)"
server_pid=""
notify_pid=""
cleanup() {
  local status=$?
  set +e
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$notify_pid" ] && kill "$notify_pid" 2>/dev/null && wait "$notify_pid" 2>/dev/null
  if [ -n "$(pkg_status)" ]; then
    echo "--- check: cleanup: dpkg -P $PKG"
    dpkg -P "$PKG" >/dev/null 2>&1 || echo "check: cleanup: dpkg -P $PKG failed" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT

# --- 0. a clean start and the tools -------------------------------------------------------
if [ -n "$(pkg_status)" ]; then
  say "$PKG is known to dpkg ($(pkg_status)), left from an earlier run: purging it first"
  dpkg -P "$PKG" >/dev/null
fi
if [ -e "$STATE" ] || getent passwd upkeep >/dev/null || getent group upkeep >/dev/null; then
  fail "$STATE or the user/group upkeep exists without the package: not mine to delete
  (remove them by hand if they are left over: rm -rf $STATE; deluser --system upkeep; delgroup --system upkeep)"
fi

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v curl >/dev/null || missing+=(curl)
case "$(dpkg-query -W -f='${Status}' adduser 2>/dev/null || true)" in
  "install ok installed") ;;
  *) missing+=(adduser) ;;
esac
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 1. build ---------------------------------------------------------------------------
say "bash packaging/build-deb.sh"
bash packaging/build-deb.sh | tee "$tmp/build.log"
deb="$(sed -n 's/^deb: \(.*\) ([0-9]* bytes.*$/\1/p' "$tmp/build.log" | tail -n 1)"
[ -f "$deb" ] || fail "build-deb.sh did not name a .deb"
deb_size="$(stat -c %s "$deb")"
version="$(dpkg-deb -f "$deb" Version)"
upstream="${version%-*}"

# --- 2. the package's contents ----------------------------------------------------------
say "dpkg-deb --info / --contents $deb"
dpkg-deb --info "$deb" >"$tmp/info"
[ "$(dpkg-deb -f "$deb" Package)" = "$PKG" ] || fail "Package is not $PKG"
dpkg-deb -f "$deb" Depends | grep -qw adduser || fail "Depends lacks adduser"
for script in postinst prerm postrm conffiles; do
  grep -qw "$script" "$tmp/info" || fail "the control archive has no $script"
done
dpkg-deb --contents "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$tmp/contents"
expected=(
  /usr/bin/upkeep
  "$UNIT"
  "$DEFAULTS"
  /usr/share/man/man1/upkeep.1.gz
  /usr/share/bash-completion/completions/upkeep
  /usr/share/zsh/vendor-completions/_upkeep
  /usr/share/fish/vendor_completions.d/upkeep.fish
  /usr/share/doc/upkeep/copyright
)
for path in "${expected[@]}"; do
  grep -qxF "$path" "$tmp/contents" || fail "$path is not in the .deb"
done
ok "the .deb holds the binary, the unit, $DEFAULTS, the man page, bash/zsh/fish completions"
mkdir "$tmp/control" "$tmp/root"
dpkg-deb --control "$deb" "$tmp/control"
dpkg-deb -x "$deb" "$tmp/root"
grep -qxF "$DEFAULTS" "$tmp/control/conffiles" || fail "$DEFAULTS is not a conffile"
for script in postinst prerm postrm; do
  sh -n "$tmp/control/$script" || fail "$script: syntax error"
  ! grep -q '#DEBHELPER#' "$tmp/control/$script" || fail "$script still holds #DEBHELPER#"
done
grep -q 'deb-systemd-invoke' "$tmp/control/postinst" || fail "postinst does not start the unit"
grep -q 'deb-systemd-invoke stop' "$tmp/control/prerm" || fail "prerm does not stop the unit"
ok "maintainer scripts: valid sh, systemd fragments filled in, $DEFAULTS is a conffile"

# --- 3. systemd-analyze security ---------------------------------------------------------
say "systemd-analyze security --offline=true (the unit as shipped)"
SYSTEMD_COLORS=0 systemd-analyze security --offline=true --no-pager \
  "$tmp/root$UNIT" >"$tmp/security" 2>&1 || true
score="$(sed -n 's/.*[Oo]verall exposure level for [^:]*: *\([0-9][0-9]*\(\.[0-9]*\)\{0,1\}\).*/\1/p' "$tmp/security" | tail -n 1)"
if [ -z "$score" ]; then
  cat "$tmp/security" >&2
  fail "no exposure score in systemd-analyze's output (above)"
fi
grep -E '^[[:space:]]*✗' "$tmp/security" || true
if ! awk -v s="$score" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(s + 0 <= max + 0) }'; then
  cat "$tmp/security" >&2
  fail "exposure $score is above $MAX_EXPOSURE"
fi
ok "systemd-analyze security: exposure $score (at most $MAX_EXPOSURE)"

# --- 4. install -------------------------------------------------------------------------
say "dpkg -i $deb"
dpkg -i "$deb"
[ "$(pkg_status)" = "install ok installed" ] || fail "not installed: $(pkg_status)"
dpkg -L "$PKG" >"$tmp/listed"
for path in "${expected[@]}"; do
  grep -qxF "$path" "$tmp/listed" || fail "dpkg -L $PKG does not list $path"
  [ -e "$path" ] || fail "$path is listed but missing"
done
dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q "$DEFAULTS" || fail "dpkg does not track $DEFAULTS as a conffile"
ok "dpkg -L lists every file and they are on disk; $DEFAULTS is a conffile"

reported="$(upkeep --version)"
case "$reported" in
  "upkeep $upstream "*) ok "upkeep --version: $reported" ;;
  *) fail "upkeep --version says '$reported', the package is $version" ;;
esac
# Not `zcat | grep -q`: grep -q stops at the first match and, under pipefail, zcat's
# SIGPIPE on a man page longer than the pipe buffer would fail the check.
zcat /usr/share/man/man1/upkeep.1.gz >"$tmp/upkeep.1"
grep -q '^\.TH' "$tmp/upkeep.1" || fail "the man page is not roff"
bash -n /usr/share/bash-completion/completions/upkeep || fail "the bash completion does not parse"
grep -q 'complete -c upkeep' /usr/share/fish/vendor_completions.d/upkeep.fish || fail "the fish completion is not for upkeep"
grep -q '#compdef upkeep' /usr/share/zsh/vendor-completions/_upkeep || fail "the zsh completion is not for upkeep"
ok "man page and completions are well formed"

getent passwd upkeep >/dev/null || fail "postinst made no user upkeep"
uid="$(id -u upkeep)"
[ "$uid" -lt 1000 ] || fail "upkeep's uid $uid is not a system uid"
[ "$(id -gn upkeep)" = upkeep ] || fail "upkeep's primary group is $(id -gn upkeep)"
shell="$(getent passwd upkeep | cut -d: -f7)"
case "$shell" in */nologin | */false) ;; *) fail "upkeep has a login shell: $shell" ;; esac
[ "$(file_mode "$STATE")" = "700 upkeep:upkeep" ] || fail "$STATE is $(file_mode "$STATE"), not 700 upkeep:upkeep"
ok "system user upkeep (uid $uid, shell $shell); $STATE is 0700 upkeep:upkeep"

wants=/etc/systemd/system/multi-user.target.wants/upkeep.service
if command -v deb-systemd-helper >/dev/null; then
  [ -L "$wants" ] || fail "postinst did not enable the unit ($wants missing)"
  ok "the unit is enabled ($wants)"
fi

systemd_running=no
if [ -d /run/systemd/system ]; then
  systemd_running=yes
  say "systemd is running: the service was started by postinst"
  for _ in $(seq 1 30); do
    systemctl is-active --quiet upkeep && break
    sleep 1
  done
  systemctl is-active --quiet upkeep || {
    systemctl status --no-pager upkeep || true
    journalctl -u upkeep --no-pager -n 50 || true
    fail "upkeep.service is not active"
  }
  curl -fsS http://127.0.0.1:8787/healthz >/dev/null || fail "the service does not answer /healthz on 127.0.0.1:8787"
  ok "upkeep.service is active (Type=notify: READY=1 arrived) and serves /healthz on :8787"
  upkeep --data "$STATE" account list >/dev/null || fail "root cannot use the service's admin socket"
  ok "root's admin command went through $STATE/admin.sock"
else
  skip "systemctl start/is-active: systemd is not running here (PID 1 is '$(ps -p 1 -o comm= 2>/dev/null || echo unknown)'); the binary is run by hand below instead"
fi

# --- 5. the installed binary as the user upkeep ------------------------------------------
say "upkeep serve as the user upkeep, configured by $DEFAULTS with every setting uncommented"
mkdir -m 0700 "$tmp/run"
chown upkeep:upkeep "$tmp/run"
chmod 0711 "$tmp" # upkeep may pass through, not list
data="$tmp/run/data"
# The environment file as an operator would fill it in: every documented `#UPKEEP_X=` /
# `#RUST_LOG=` line switched on (they must all be accepted), then this test's own place.
sed -n 's/^#\(\(UPKEEP_[A-Z_]*\|RUST_LOG\)=.*\)$/\1/p' "$DEFAULTS" >"$tmp/env"
[ "$(wc -l <"$tmp/env")" -ge 10 ] || fail "$DEFAULTS documents fewer settings than expected"
notify=""
if command -v python3 >/dev/null; then
  notify="$tmp/run/notify.sock"
  python3 - "$notify" "$tmp/notify.log" <<'EOF' &
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
with open(log, "a", buffering=1) as out:
    os.umask(0)  # the socket is born writable by upkeep: ready as soon as it exists
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    while True:
        out.write(sock.recv(4096).decode() + "\n")
EOF
  notify_pid=$!
  for _ in $(seq 1 200); do [ -S "$notify" ] && break; sleep 0.1; done
  [ -S "$notify" ] || fail "the \$NOTIFY_SOCKET stand-in (python3) did not start"
fi
env_args=(env -i PATH=/usr/bin:/bin HOME="$STATE")
while IFS= read -r line; do env_args+=("$line"); done <"$tmp/env"
env_args+=(UPKEEP_DATA="$data" UPKEEP_LISTEN=127.0.0.1:0 ${notify:+NOTIFY_SOCKET="$notify"})
: >"$tmp/serve.log"
setpriv --reuid=upkeep --regid=upkeep --init-groups "${env_args[@]}" /usr/bin/upkeep serve \
  >>"$tmp/serve.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 300); do
  port="$(sed -n 's/.*upkeep listening listen=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/serve.log" | head -n 1)"
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  cat "$tmp/serve.log" >&2
  fail "the server did not start (log above)"
fi
health="$(curl -fsS "http://127.0.0.1:$port/healthz")" || fail "/healthz failed on port $port"
ok "serving as $(ps -o user= -p "$server_pid") on 127.0.0.1:$port: /healthz -> $health"
for _ in $(seq 1 200); do [ -S "$data/admin.sock" ] && break; sleep 0.1; done
[ "$(file_mode "$data")" = "700 upkeep:upkeep" ] || fail "$data is $(file_mode "$data")"
[ "$(file_mode "$data/server.key")" = "600 upkeep:upkeep" ] || fail "server.key is $(file_mode "$data/server.key")"
[ "$(file_mode "$data/admin.sock")" = "600 upkeep:upkeep" ] || fail "admin.sock is $(file_mode "$data/admin.sock")"
ok "data dir 0700, server.key 0600, admin.sock 0600, all owned by upkeep"
if [ -n "$notify" ]; then
  for _ in $(seq 1 50); do grep -q '^READY=1' "$tmp/notify.log" && break; sleep 0.1; done
  grep -q '^READY=1' "$tmp/notify.log" || fail "no READY=1 on \$NOTIFY_SOCKET"
  ok "READY=1 sent to \$NOTIFY_SOCKET once listening ($(grep -o 'STATUS=.*' "$tmp/notify.log" | head -n 1))"
fi
setpriv --reuid=upkeep --regid=upkeep --init-groups env -i PATH=/usr/bin:/bin \
  upkeep --data "$data" account create --name "Check" --email check@example.invalid >/dev/null \
  || fail "the user upkeep cannot run admin commands against the running server"
upkeep --data "$data" account list | grep -q Check || fail "root cannot run admin commands through admin.sock"
ok "admin commands through admin.sock: as upkeep (account create) and as root (account list)"
kill -TERM "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=""
[ "$server_status" = 0 ] || fail "the server exited $server_status on SIGTERM"
grep -q 'stopped' "$tmp/serve.log" || fail "no clean stop in the log"
if [ -n "$notify" ]; then
  for _ in $(seq 1 50); do grep -q '^STOPPING=1' "$tmp/notify.log" && break; sleep 0.1; done
  grep -q '^STOPPING=1' "$tmp/notify.log" || fail "no STOPPING=1 on \$NOTIFY_SOCKET"
  kill "$notify_pid" 2>/dev/null || true
  wait "$notify_pid" 2>/dev/null || true
  notify_pid=""
  ok "SIGTERM: STOPPING=1 sent, store flushed, exit 0"
else
  ok "SIGTERM: store flushed, exit 0"
  skip "READY=1/STOPPING=1: no python3 here to stand in for \$NOTIFY_SOCKET"
fi

# Data in the package's own state directory, for the upgrade and removal checks.
setpriv --reuid=upkeep --regid=upkeep --init-groups env -i PATH=/usr/bin:/bin \
  upkeep --data "$STATE" account create --name "Kept" --email kept@example.invalid >/dev/null \
  || fail "the user upkeep cannot write $STATE"
[ -f "$STATE/server.key" ] && [ -d "$STATE/db" ] || fail "no store in $STATE"
key_sum="$(sha256sum <"$STATE/server.key")"
ok "a store with an account in $STATE (made as upkeep)"

# --- 6. upgrade --------------------------------------------------------------------------
say "upgrade: dpkg -i a newer revision over it (an edited $DEFAULTS must survive)"
revision="${version##*-}"
# (cargo-deb deletes older .debs of the package from target/debian/: keep ours.)
cp "$deb" "$tmp/built.deb"
cargo deb --no-build --quiet --deb-revision "$((revision + 1))" --fast -o "$tmp/upgrade.deb" >/dev/null
cp "$tmp/built.deb" "$deb"
printf '# edited by check.sh\nUPKEEP_MAX_CONNECTIONS=512\n' >>"$DEFAULTS"
dpkg -i "$tmp/upgrade.deb"
[ "$(dpkg-query -W -f='${Version}' "$PKG")" = "${version%-*}-$((revision + 1))" ] || fail "the upgrade did not install"
grep -q 'edited by check.sh' "$DEFAULTS" || fail "the upgrade overwrote the edited $DEFAULTS"
[ "$(id -u upkeep)" = "$uid" ] || fail "the upgrade changed upkeep's uid"
[ "$(sha256sum <"$STATE/server.key")" = "$key_sum" ] || fail "the upgrade changed server.key"
[ "$(file_mode "$STATE")" = "700 upkeep:upkeep" ] || fail "after the upgrade $STATE is $(file_mode "$STATE")"
# As upkeep: with no server running, root is refused on upkeep's store (it would leave
# root-owned files behind). No --data: the packaged /var/lib/upkeep is the fallback.
(cd / && setpriv --reuid=upkeep --regid=upkeep --init-groups env -i PATH=/usr/bin:/bin \
  upkeep account list) | grep -q Kept || fail "the account is gone after the upgrade (or plain 'upkeep' did not find $STATE)"
if [ "$systemd_running" = no ]; then
  root_says="$(upkeep --data "$STATE" account list 2>&1 >/dev/null)" && fail "root opened upkeep's stopped store"
  case "$root_says" in *"sudo -u upkeep upkeep"*) ;; *) fail "root's refusal does not say how: $root_says" ;; esac
fi
if [ "$systemd_running" = yes ]; then
  systemctl is-active --quiet upkeep || fail "upkeep.service is not active after the upgrade"
fi
ok "upgrade to $(dpkg-query -W -f='${Version}' "$PKG"): same uid, same server.key, data and edited conffile kept"

# --- 7. remove, then purge ---------------------------------------------------------------
say "dpkg -r $PKG"
dpkg -r "$PKG"
[ "$(pkg_status)" = "deinstall ok config-files" ] || fail "after dpkg -r: $(pkg_status)"
[ ! -e /usr/bin/upkeep ] || fail "/usr/bin/upkeep is still there"
[ ! -e "$UNIT" ] || fail "$UNIT is still there"
[ -f "$STATE/server.key" ] && [ -d "$STATE/db" ] || fail "dpkg -r deleted the data in $STATE"
getent passwd upkeep >/dev/null || fail "dpkg -r deleted the user"
[ -f "$DEFAULTS" ] || fail "dpkg -r deleted $DEFAULTS"
ok "dpkg -r: binary and unit gone; $STATE (db/, server.key), the user and $DEFAULTS kept"

say "dpkg -P $PKG"
dpkg -P "$PKG"
[ -z "$(pkg_status)" ] || [ "$(pkg_status)" = "unknown ok not-installed" ] || fail "after dpkg -P: $(pkg_status)"
[ ! -e "$STATE" ] || fail "dpkg -P left $STATE"
! getent passwd upkeep >/dev/null || fail "dpkg -P left the user upkeep"
! getent group upkeep >/dev/null || fail "dpkg -P left the group upkeep"
[ ! -e "$DEFAULTS" ] || fail "dpkg -P left $DEFAULTS"
[ ! -e "$wants" ] || fail "dpkg -P left $wants"
ok "dpkg -P: $STATE (with server.key), the user and group, $DEFAULTS and the enable link are gone"

echo
echo "packaging check passed"
echo "packaging: $passed passed, 0 failed, $skipped skipped"
echo "  package:  $deb ($version)"
echo "  size:     $deb_size bytes ($(numfmt --to=iec-i --suffix=B "$deb_size")); installed $(dpkg-deb -f "$deb" Installed-Size) KiB"
echo "  exposure: $score (systemd-analyze security --offline=true; limit $MAX_EXPOSURE)"
if [ "$systemd_running" = yes ]; then
  echo "  systemd:  the service was started, answered /healthz and survived the upgrade"
else
  echo "  systemd:  not running here: systemctl start not checked (the binary ran as upkeep instead;
            packaging/check-systemd.sh checks it under systemd in a container)"
fi
