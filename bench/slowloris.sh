#!/usr/bin/env bash
# Slowloris and idle-connection flood: how fast the status page answers a well-behaved client
# while thousands of connections from loopback sit idle or trickle their headers.
#
#   bash bench/slowloris.sh
#
# Settings (environment): IDLE (5000 idle connections), SLOW (500 slowloris connections),
# REQUESTS (300 timed requests per run), ATTACK_SECONDS (40, the most the attack phase may last),
# CANDOR_PORT (a free port from 18280 on), SKIP_BUILD=1 (reuse target/release/candor as it is),
# CANDOR_BIN (another binary to run, e.g. target/debug/candor; implies SKIP_BUILD=1).
#
# What it does: builds Candor in release mode (unless SKIP_BUILD=1), starts it with a throwaway
# config (temporary SQLite database, log channels to files, default `server:` limits), then
#   1. anchor: bench/slowloris.py times REQUESTS sequential `GET /` (a new connection each,
#      gzip accepted, `Connection: close`) with nothing else going on;
#   2. attack: the same client and count again while the same script holds IDLE connections
#      that send nothing and SLOW connections that send a header line every 2 s and never end
#      their head, reopening whichever the server closes (header_read_timeout closes both kinds).
# A request that fails or takes over 10 s counts as 10 s. Everything is on 127.0.0.1; both
# phases are bounded in time and the script stops Candor and the attacker itself.
# Last line printed: `ratio p99 under attack / p99 without: X.XX`.
set -euo pipefail

IDLE=${IDLE:-5000}
SLOW=${SLOW:-500}
REQUESTS=${REQUESTS:-300}
ATTACK_SECONDS=${ATTACK_SECONDS:-40}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

log() { printf '[slowloris] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"
# Both the attacker and Candor need thousands of descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) > IDLE + SLOW + 512)) || die "ulimit -n is $(ulimit -n); need more than $((IDLE + SLOW + 512))"

tmp=$(mktemp -d /tmp/candor-slowloris.XXXXXX)
candor_pid=""
stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop_pid "$candor_pid"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$1
  while ! port_free "$p"; do p=$((p + 1)); ((p < $1 + 100)) || die "no free port near $1"; done
  echo "$p"
}
PORT=${CANDOR_PORT:-$(free_port 18280)}

if [[ -n ${CANDOR_BIN:-} ]]; then
  SKIP_BUILD=1
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "cargo build --release (at most 270 s)"
  timeout 270 cargo build --release --quiet --bin candor || die "cargo build --release failed or took over 270 s"
fi
CANDOR=${CANDOR_BIN:-$repo/target/release/candor}
[[ -x $CANDOR ]] || die "no $CANDOR (build it, or drop SKIP_BUILD=1)"
log "binary: $CANDOR"

conf=$tmp/candor.yaml
awk -v db="sqlite://$tmp/candor.db" -v pub="$tmp/public.log" -v ops="$tmp/ops.log" '
  /^[[:space:]]*url:[[:space:]]*"sqlite:/ { sub(/"sqlite:[^"]*"/, "\"" db "\"") }
  /^[[:space:]]*path:[[:space:]]*"-"/ { n++; sub(/"-"/, "\"" (n == 1 ? pub : ops) "\"") }
  { print }' config/candor.yaml >"$conf"
grep -q "sqlite://$tmp/candor.db" "$conf" || die "could not point database.url at the temp dir"
export RUST_LOG=warn
unset DATABASE_URL CANDOR_LISTEN CANDOR_CONFIG

"$CANDOR" --config "$conf" serve --listen "127.0.0.1:$PORT" >"$tmp/candor.out" 2>"$tmp/candor.err" &
candor_pid=$!
for i in $(seq 100); do
  curl -sS --max-time 2 -o /dev/null -f "http://127.0.0.1:$PORT/readyz" 2>/dev/null && break
  kill -0 "$candor_pid" 2>/dev/null || { cat "$tmp/candor.err" >&2; die "candor exited"; }
  ((i < 100)) || die "candor not ready after 20 s"
  sleep 0.2
done
log "candor ready on 127.0.0.1:$PORT (pid $candor_pid); open-files limit $(ulimit -n)"

log "anchor: $REQUESTS requests, no attack"
read -r a50 a99 aerr < <(timeout 60 python3 bench/slowloris.py measure "$PORT" "$REQUESTS")
log "attack: $IDLE idle + $SLOW slowloris connections, then $REQUESTS requests"
read -r x50 x99 xerr < <(timeout $((ATTACK_SECONDS + 15)) python3 bench/slowloris.py attack "$PORT" "$IDLE" "$SLOW" "$ATTACK_SECONDS" "$REQUESTS")
kill -0 "$candor_pid" 2>/dev/null || { cat "$tmp/candor.err" >&2; die "candor died under attack"; }
rss=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$candor_pid/status")

printf 'no attack:    p50 %8.2f ms   p99 %8.2f ms   failed %s of %s\n' "$a50" "$a99" "$aerr" "$REQUESTS"
printf 'under attack: p50 %8.2f ms   p99 %8.2f ms   failed %s of %s (%s idle + %s slowloris connections)\n' \
  "$x50" "$x99" "$xerr" "$REQUESTS" "$IDLE" "$SLOW"
printf 'candor peak RSS: %s\n' "$rss"
python3 -c "import sys; print('ratio p99 under attack / p99 without: %.2f' % (float(sys.argv[2]) / max(float(sys.argv[1]), 0.001)))" "$a99" "$x99"
