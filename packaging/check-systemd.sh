#!/usr/bin/env bash
# Optional, not run by CI: the .deb under a real systemd (PID 1), in a throwaway
# systemd-nspawn container booted from a Debian root file system. It checks what
# packaging/check.sh cannot where systemd is not running: postinst starts the unit,
# Type=notify readiness (active only once listening), the sandbox as really applied
# (no capabilities, seccomp, NoNewPrivs, user upkeep), /healthz on 127.0.0.1:8787, admin
# commands through admin.sock as root and as upkeep, `systemctl restart` with an edited
# /etc/default/upkeep, an upgrade restarting the service, `dpkg -r` stopping it (data
# kept) and `dpkg -P` removing data and user.
#
#   bash packaging/check-systemd.sh [path/to/upkeep.deb]     (default: build-deb.sh)
#
# Needs root, Debian's apt (installs debootstrap and systemd-container) and the Debian
# mirror. The first run debootstraps the root file system into /var/tmp/upkeep-nspawn
# (about 270 MB, a few minutes); later runs reuse it. Each run boots an --ephemeral copy,
# so the cached root file system never changes.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOTFS=/var/tmp/upkeep-nspawn
MIRROR=http://deb.debian.org/debian
fail() {
  echo "check-systemd: FAIL: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || fail "run me as root"

deb="${1:-}"
if [ -z "$deb" ]; then
  deb="$(bash packaging/build-deb.sh 2>&1 | tee /dev/stderr | sed -n 's/^deb: \(.*\) ([0-9]* bytes.*$/\1/p' | tail -n 1)"
fi
[ -f "$deb" ] || fail "no .deb at '$deb'"

if ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap systemd-container >/dev/null
fi
if [ ! -x "$ROOTFS/usr/lib/systemd/systemd" ]; then
  suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  echo "--- debootstrap $suite into $ROOTFS (once)"
  rm -rf "$ROOTFS.partial"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser,curl,procps \
    "$suite" "$ROOTFS.partial" "$MIRROR" >/dev/null
  mv "$ROOTFS.partial" "$ROOTFS"
fi

tmp="$(mktemp -d /tmp/upkeep-check-systemd.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
cp "$deb" "$tmp/upkeep.deb"
# A later revision of the same build, for the upgrade.
version="$(dpkg-deb -f "$deb" Version)"
cp "$deb" "$tmp/built.deb" # cargo-deb deletes older .debs of the package from target/debian/
cargo deb --no-build --quiet --deb-revision "$((${version##*-} + 1))" --fast -o "$tmp/upkeep-next.deb" >/dev/null
cp "$tmp/built.deb" "$deb"

cat >"$tmp/upkeep-check.service" <<'EOF'
[Unit]
Description=upkeep package check
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/bash /check/inside.sh
StandardOutput=file:/check/result.log
StandardError=inherit
ExecStopPost=/bin/systemctl poweroff --no-block
EOF

cat >"$tmp/inside.sh" <<'EOF'
set -euo pipefail
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; journalctl -u upkeep --no-pager | tail -n 30; exit 1; }
active() { for _ in $(seq 1 50); do systemctl is-active --quiet upkeep && return 0; sleep 0.2; done; return 1; }
as_upkeep() { setpriv --reuid=upkeep --regid=upkeep --init-groups "$@"; }

dpkg -i /check/upkeep.deb >/dev/null
systemctl is-enabled --quiet upkeep || fail "not enabled"
active || fail "upkeep.service did not become active"
[ "$(systemctl show -p Type --value upkeep)" = notify ] || fail "not Type=notify"
ok "dpkg -i: enabled and started; active (Type=notify), status: $(systemctl show -p StatusText --value upkeep)"
[ "$(curl -fsS http://127.0.0.1:8787/healthz)" = '{"status":"ok"}' ] || fail "/healthz"
ok "/healthz on 127.0.0.1:8787"
pid="$(systemctl show -p MainPID --value upkeep)"
grep -q "^Uid:[[:space:]]*$(id -u upkeep)[[:space:]]" "/proc/$pid/status" || fail "not running as upkeep"
grep -q '^CapEff:[[:space:]]*0000000000000000$' "/proc/$pid/status" || fail "has capabilities"
grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$pid/status" || fail "NoNewPrivs is off"
grep -q '^Seccomp:[[:space:]]*2$' "/proc/$pid/status" || fail "no seccomp filter"
ok "runs as upkeep, no capabilities, NoNewPrivs, seccomp filter on"
upkeep --data /var/lib/upkeep account create --name Root --email root@example.invalid >/dev/null || fail "root via admin.sock"
as_upkeep upkeep --data /var/lib/upkeep account list | grep -q Root || fail "upkeep via admin.sock"
ok "admin.sock: account create as root, account list as upkeep"
[ "$(stat -c '%a %U' /var/lib/upkeep)" = "700 upkeep" ] || fail "/var/lib/upkeep is $(stat -c '%a %U' /var/lib/upkeep)"
echo "$(systemd-analyze security --no-pager upkeep | tail -n 1) (systemd-analyze security, live)"
echo "UPKEEP_TRUST_PROXY=true" >>/etc/default/upkeep
systemctl restart upkeep
active || fail "restart with an edited /etc/default/upkeep"
[ "$(systemctl show -p MainPID --value upkeep)" != "$pid" ] || fail "restart did not restart"
pid="$(systemctl show -p MainPID --value upkeep)"
tr '\0' '\n' <"/proc/$pid/environ" | grep -qx UPKEEP_TRUST_PROXY=true || fail "the environment file was not read"
ok "systemctl restart picks up /etc/default/upkeep"
dpkg -i /check/upkeep-next.deb >/dev/null
active || fail "not active after the upgrade"
[ "$(systemctl show -p MainPID --value upkeep)" != "$pid" ] || fail "the upgrade did not restart the service"
grep -q UPKEEP_TRUST_PROXY=true /etc/default/upkeep || fail "the upgrade lost the conffile edit"
upkeep --data /var/lib/upkeep account list | grep -q Root || fail "data lost in the upgrade"
ok "upgrade to $(dpkg-query -W -f='${Version}' upkeep): restarted, data and conffile edit kept"
dpkg -r upkeep >/dev/null
! systemctl is-active --quiet upkeep || fail "still running after dpkg -r"
[ -f /var/lib/upkeep/server.key ] && getent passwd upkeep >/dev/null || fail "dpkg -r lost data or user"
ok "dpkg -r: stopped; data and user kept"
dpkg -P upkeep >/dev/null 2>&1
[ ! -e /var/lib/upkeep ] && ! getent passwd upkeep >/dev/null && [ ! -e /etc/default/upkeep ] || fail "dpkg -P left something"
ok "dpkg -P: data, user and /etc/default/upkeep gone"
echo PASS
EOF

echo "--- booting systemd in an ephemeral copy of $ROOTFS"
timeout 300 systemd-nspawn --quiet --directory="$ROOTFS" --ephemeral --boot --register=no \
  --keep-unit --console=pipe --machine="upkeep-check-$$" \
  --bind="$tmp:/check" --bind-ro="$tmp/upkeep-check.service:/etc/systemd/system/upkeep-check.service" \
  systemd.wants=upkeep-check.service >"$tmp/nspawn.log" 2>&1 || true
if [ ! -f "$tmp/result.log" ]; then
  cat "$tmp/nspawn.log" >&2
  fail "the check did not run inside the container (nspawn output above)"
fi
cat "$tmp/result.log"
grep -qx PASS "$tmp/result.log" || fail "see above"
echo "real systemd check passed ($(dpkg-deb -f "$deb" Version) in $(. "$ROOTFS/etc/os-release" && echo "$PRETTY_NAME"))"
