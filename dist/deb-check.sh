#!/usr/bin/env bash
# The Debian package, end to end, on this machine: build it with cargo-deb, install it, verify
# the installed unit with `systemd-analyze verify`, start the command the unit runs (as the
# `candor` user, with the installed config, in the state directory: systemd need not be PID 1),
# wait for /readyz, stop it, purge the package and check that the user and state are gone.
# Installs what it needs (cargo-deb, systemd's tools), idempotently. Needs root (dpkg -i).
#
#   bash dist/deb-check.sh                  # release build, as CI does
#   DEB_PROFILE=dev bash dist/deb-check.sh  # a quicker debug build, for trying it out
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n--> %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  [ "${CI:-false}" = true ] && fail "dist/deb-check.sh needs root (dpkg -i)"
  echo "SKIPPED: dist/deb-check.sh needs root (dpkg -i)"
  exit 0
fi

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq
    timeout 600 apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

apt_install adduser curl python3
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd
if ! cargo deb --version >/dev/null 2>&1; then
  log "installing cargo-deb"
  timeout 1200 cargo install cargo-deb --locked
fi

profile=${DEB_PROFILE:-release}
log "cargo deb (profile $profile)"
out=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  dpkg --purge candor >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
timeout 1800 cargo deb --profile "$profile" --output "$out/" >"$out/build.log" 2>&1 \
  || { cat "$out/build.log" >&2; fail "cargo deb failed"; }
deb=$(ls "$out"/*.deb)
echo "built $(basename "$deb")"
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'

log "dpkg -i"
dpkg --purge candor >/dev/null 2>&1 || true # a run stopped half-way
timeout 120 dpkg -i "$deb"
getent passwd candor >/dev/null || fail "no candor user after install"
[ "$(stat -c %U /var/lib/candor)" = candor ] || fail "/var/lib/candor is not owned by candor"
[ "$(stat -c %G:%a /etc/candor/candor.yaml)" = candor:640 ] \
  || fail "/etc/candor/candor.yaml is not root:candor 0640"
unit=$(dpkg -L candor | grep '/systemd/system/candor\.service$' | head -1)
[ -n "$unit" ] || fail "the package installs no candor.service"
echo "unit: $unit"

log "systemd-analyze verify $unit"
# It exits 0 on an unknown or misspelt key, with a warning: any output fails the check.
verify=$(timeout 60 systemd-analyze verify "$unit" 2>&1) || { echo "$verify" >&2; fail "systemd-analyze verify"; }
[ -z "$verify" ] || { echo "$verify" >&2; fail "systemd-analyze verify warns"; }
echo "no warnings"

log "the unit's command, as candor, with the installed config"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
workdir=$(sed -n 's/^WorkingDirectory=//p' "$unit")
[ -n "$exec_start" ] && [ -n "$workdir" ] || fail "no ExecStart or WorkingDirectory in $unit"
# A free port, so a server already on 8080 is not what answers.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_candor=(setpriv --reuid=candor --regid=candor --init-groups
  env -i PATH=/usr/bin:/bin HOME="$workdir" CANDOR_LISTEN="127.0.0.1:$port")
# The unit's command lines, split as systemd splits them (they hold no quotes). `exec` all the
# way down, so $server_pid is candor itself and SIGTERM reaches it.
# shellcheck disable=SC2086
[ -z "$pre" ] || (cd "$workdir" && exec "${as_candor[@]}" $pre)
# shellcheck disable=SC2086
(cd "$workdir" && exec "${as_candor[@]}" $exec_start) >"$out/serve.log" 2>&1 &
server_pid=$!
ready=false
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=true; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
if [ "$ready" != true ]; then
  cat "$out/serve.log" >&2
  fail "/readyz did not answer on 127.0.0.1:$port within 60 s"
fi
echo "/readyz answered on 127.0.0.1:$port"
curl -fsS "http://127.0.0.1:$port/" | grep -q '<title>' || fail "the status page did not answer"
[ -n "$(find /var/lib/candor -name '*.db' -user candor)" ] \
  || fail "no database owned by candor under /var/lib/candor"
kill -TERM "$server_pid"
wait "$server_pid" || fail "serve did not stop cleanly on SIGTERM"
server_pid=""
grep -q 'Candor is listening on' "$out/serve.log" || fail "serve did not print its addresses"

log "dpkg --purge"
timeout 120 dpkg --purge candor
if getent passwd candor >/dev/null; then fail "the candor user is left after purge"; fi
[ ! -e /var/lib/candor ] || fail "/var/lib/candor is left after purge"
[ ! -e /usr/bin/candor ] || fail "/usr/bin/candor is left after purge"
echo "deb-check: OK"
