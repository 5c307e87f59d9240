#!/usr/bin/env bash
# Status page vs nginx: how fast Candor serves its cached status page (`GET /`) compared with
# nginx serving the very same bytes as a static file, on the same machine, in the same run.
#
#   bash bench/status_page.sh
#
# Settings (environment): WRK_THREADS (2), WRK_CONNECTIONS (64), WRK_DURATION (15s),
# WRK_WARMUP (2s), CANDOR_PORT / NGINX_PORT (a free port from 18080 / 18180 on),
# NGINX_HTTP_EXTRA (directives added to nginx's http block, e.g. "open_file_cache max=16;"),
# SKIP_BUILD=1 (reuse target/release/candor as it is, for repeated runs).
#
# What it does: installs nginx and wrk if missing (Debian packages), builds Candor in release
# mode, starts it on a temporary SQLite database and config (log channels write to files in the
# temp folder), seeds three incidents through the v1 API, copies the exact bytes of Candor's
# `GET /` into an nginx root (checked with cmp), then runs wrk against Candor and then against
# nginx with the same threads, connections and duration, after a short warm-up of each.
# wrk sends no Accept-Encoding header, so both servers send the identity (uncompressed) bytes.
# Peak RSS: Candor's VmHWM from /proc/<pid>/status; nginx's is the peak, over samples of VmRSS
# every 200 ms during its run, of the sum over the master and all workers (the sum of their
# VmHWM is printed too). Both servers and wrk share this machine's cores.
# Last line printed: `ratio candor/nginx (requests/s): X.XX`.
set -euo pipefail

THREADS=${WRK_THREADS:-2}
CONNS=${WRK_CONNECTIONS:-64}
DURATION=${WRK_DURATION:-15s}
WARMUP=${WRK_WARMUP:-2s}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

log() { printf '[status_page] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- 1. packages -------------------------------------------------------------------------
missing=()
for p in nginx wrk curl; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  timeout 120 "${sudo_cmd[@]}" apt-get update -qq
  # policy-rc.d 101: do not start the system nginx service on install.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo_cmd[@]}" chmod +x /usr/sbin/policy-rc.d
    remove_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive timeout 180 "${sudo_cmd[@]}" apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
  if [[ ${remove_policy:-0} == 1 ]]; then "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d; fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx not found after install"
command -v wrk >/dev/null || die "wrk not found after install"

# --- temp dir and cleanup ----------------------------------------------------------------
tmp=$(mktemp -d /tmp/candor-status-bench.XXXXXX)
candor_pid=""
nginx_pid=""
sampler_pid=""
child_pid=""
stop_pid() { # pid: TERM, wait up to 5 s, then KILL
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop_pid "$child_pid"
  stop_pid "$sampler_pid"
  stop_pid "$candor_pid"
  stop_pid "$nginx_pid"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Long steps run in the background and are waited for, so a signal stops the run at once.
in_bg() {
  "$@" &
  child_pid=$!
  local rc=0
  wait "$child_pid" || rc=$?
  child_pid=""
  return "$rc"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # first free port from $1
  local p=$1
  while ! port_free "$p"; do p=$((p + 1)); ((p < $1 + 100)) || die "no free port near $1"; done
  echo "$p"
}
CPORT=${CANDOR_PORT:-$(free_port 18080)}
NPORT=${NGINX_PORT:-$(free_port 18180)}
[[ $CPORT != "$NPORT" ]] || die "CANDOR_PORT and NGINX_PORT must differ"
CURL=(curl -sS --max-time 5)

# --- 2. build and start Candor -----------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "cargo build --release (at most 270 s)"
  rc=0
  in_bg timeout 270 cargo build --release --quiet --bin candor || rc=$?
  ((rc != 124)) || die "cargo build --release took over 270 s (is another build holding the CPUs?)"
  ((rc == 0)) || die "cargo build --release failed"
fi
CANDOR=$repo/target/release/candor

conf=$tmp/candor.yaml
# database.url -> temp SQLite; the first log channel (public) and the second (ops) -> files.
awk -v db="sqlite://$tmp/candor.db" -v pub="$tmp/public.log" -v ops="$tmp/ops.log" '
  /^[[:space:]]*url:[[:space:]]*"sqlite:/ { sub(/"sqlite:[^"]*"/, "\"" db "\"") }
  /^[[:space:]]*path:[[:space:]]*"-"/ { n++; sub(/"-"/, "\"" (n == 1 ? pub : ops) "\"") }
  { print }' config/candor.yaml >"$conf"
grep -q "sqlite://$tmp/candor.db" "$conf" || die "could not point database.url at the temp dir"
[[ $(grep -c "path: \"$tmp/" "$conf") -ge 2 ]] || die "could not redirect the log channels"
export RUST_LOG=warn
unset DATABASE_URL CANDOR_LISTEN CANDOR_CONFIG

token=$("$CANDOR" --config "$conf" token create --name bench | tail -n 1)
[[ $token == candor_* ]] || die "unexpected token line: $token"

"$CANDOR" --config "$conf" serve --listen "127.0.0.1:$CPORT" >"$tmp/candor.out" 2>"$tmp/candor.err" &
candor_pid=$!
CURL_C="http://127.0.0.1:$CPORT"
for i in $(seq 100); do
  "${CURL[@]}" -o /dev/null -f "$CURL_C/readyz" 2>/dev/null && break
  kill -0 "$candor_pid" 2>/dev/null || { cat "$tmp/candor.err" >&2; die "candor exited"; }
  ((i < 100)) || die "candor not ready after 20 s"
  sleep 0.2
done
log "candor ready on 127.0.0.1:$CPORT (pid $candor_pid)"

post() { # path json -> prints body; fails on non-2xx
  "${CURL[@]}" -f -X POST "$CURL_C$1" -H "Authorization: Bearer $token" \
    -H "Content-Type: application/json" -d "$2"
}
post /api/v1/incidents '{"title": "Delayed password-reset emails", "impact": "minor",
  "status": "identified", "message": "Password-reset emails arrive up to 20 minutes late.",
  "components": {"email": "degraded_performance"}, "eta_in": "30m"}' >"$tmp/i1.json"
resolved_id=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])' <"$tmp/i1.json") \
  || die "the declare answer has no id: $(head -c 300 "$tmp/i1.json")"
post "/api/v1/incidents/$resolved_id/resolve" \
  '{"message": "The mail queue has drained; emails arrive on time again."}' >/dev/null
post /api/v1/incidents '{"title": "Elevated API error rates", "impact": "major",
  "status": "investigating", "message": "About 20% of API requests fail with 502. We are looking into it.",
  "components": {"api": "partial_outage"}, "eta_in": "45m"}' >/dev/null
post /api/v1/incidents '{"title": "Dashboard loads slowly", "impact": "minor",
  "status": "identified", "message": "The dashboard takes up to 10 seconds to load; a database index is being rebuilt.",
  "components": {"web": "degraded_performance"}, "eta_in": "2h"}' >/dev/null

for i in $(seq 50); do
  page=$("${CURL[@]}" "$CURL_C/" || true)
  if grep -q "Elevated API error rates" <<<"$page" && grep -q "Dashboard loads slowly" <<<"$page"; then
    break
  fi
  ((i < 50)) || die "the status page does not show the seeded incidents after 10 s"
  sleep 0.2
done

# --- 3. the same bytes for nginx ---------------------------------------------------------
root=$tmp/www
mkdir -p "$root" "$tmp/nginx/logs"
"${CURL[@]}" -f -o "$root/index.html" "$CURL_C/" # curl sends no Accept-Encoding: identity bytes
page_bytes=$(stat -c %s "$root/index.html")
chmod 755 "$tmp" "$root"
chmod 644 "$root/index.html"

cores=$(nproc)
cat >"$tmp/nginx.conf" <<EOF
worker_processes $cores;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  default_type text/html;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/nginx/client_body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  ${NGINX_HTTP_EXTRA:-}
  server {
    listen 127.0.0.1:$NPORT;
    root $root;
    index index.html;
  }
}
EOF
"$NGINX" -t -q -c "$tmp/nginx.conf" -p "$tmp/nginx" 2>"$tmp/nginx-t.err" ||
  { cat "$tmp/nginx-t.err" >&2; die "nginx config test failed"; }
"$NGINX" -c "$tmp/nginx.conf" -p "$tmp/nginx" >"$tmp/nginx.out" 2>&1 &
nginx_pid=$!
CURL_N="http://127.0.0.1:$NPORT"
for i in $(seq 50); do
  "${CURL[@]}" -o "$tmp/nginx-copy.html" -f "$CURL_N/" 2>/dev/null && break
  kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/nginx.out" >&2; die "nginx exited"; }
  ((i < 50)) || die "nginx not answering after 10 s"
  sleep 0.2
done
cmp "$root/index.html" "$tmp/nginx-copy.html" || die "nginx does not serve the same bytes"
log "nginx on 127.0.0.1:$NPORT (master pid $nginx_pid, $cores workers) serves the same $page_bytes bytes (cmp OK)"

# --- 4. measure --------------------------------------------------------------------------
tck=$(getconf CLK_TCK)
pids_of() { # candor | nginx -> pids of that server's processes
  if [[ $1 == candor ]]; then echo "$candor_pid"; else
    echo "$nginx_pid" $(pgrep -P "$nginx_pid" || true)
  fi
}
kb_field() { # pid field -> kB
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
cpu_ticks() { # pids... -> utime+stime summed
  local t=0 p s
  for p in "$@"; do
    s=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + $(awk '{ print $12 + $13 }' <<<"$s")))
  done
  echo "$t"
}
sample_rss() { # out pids...: peak of the summed VmRSS, every 200 ms, until killed
  local out=$1 peak=0 sum p
  shift
  while :; do
    sum=0
    for p in "$@"; do sum=$((sum + $(kb_field "$p" VmRSS || echo 0))); done
    ((sum > peak)) && { peak=$sum; echo "$peak" >"$out"; }
    sleep 0.2
  done
}
to_ms() { # wrk latency like 1.23ms / 456.00us / 1.02s -> ms
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.2f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
    else printf "%s", v }'
}

declare -A RPS P50 P99 RSS HWM CPU ERRS
run() { # name url
  local name=$1 url=$2 out=$tmp/wrk-$1.txt pids t0 t1 secs
  read -ra pids <<<"$(pids_of "$name")"
  log "warm-up $name: wrk -t$THREADS -c$CONNS -d$WARMUP"
  in_bg timeout 60 wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" "$url" >/dev/null
  echo 0 >"$tmp/rss-$name"
  sample_rss "$tmp/rss-$name" "${pids[@]}" &
  sampler_pid=$!
  t0=$(cpu_ticks "${pids[@]}")
  log "run $name: wrk -t$THREADS -c$CONNS -d$DURATION --latency $url"
  in_bg timeout 300 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$url" >"$out"
  t1=$(cpu_ticks "${pids[@]}")
  stop_pid "$sampler_pid"
  sampler_pid=""
  sed 's/^/    /' "$out" >&2
  RPS[$name]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  P50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  P99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  secs=$(awk '/requests in/ { v = $4; sub(/,$/, "", v); print v }' "$out")
  ERRS[$name]=$( (grep -E 'Non-2xx|Socket errors' "$out" || true) | tr -s ' ' | paste -sd ';' -)
  local hwm=0 p
  for p in "${pids[@]}"; do hwm=$((hwm + $(kb_field "$p" VmHWM || echo 0))); done
  HWM[$name]=$hwm
  RSS[$name]=$(cat "$tmp/rss-$name")
  CPU[$name]=$(awk -v d=$((t1 - t0)) -v tck="$tck" -v s="$secs" 'BEGIN {
    w = s; sub(/s$/, "", w); if (w ~ /m$/) { sub(/m$/, "", w); w *= 60 }
    printf "%.0f", (w > 0 ? 100 * d / tck / w : 0) }')
}
run candor "$CURL_C/"
run nginx "$CURL_N/"

# --- 5. report ---------------------------------------------------------------------------
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
  echo
  echo "GET / ($page_bytes bytes, identity: no Accept-Encoding), wrk -t$THREADS -c$CONNS -d$DURATION --latency"
  echo "(after a $WARMUP warm-up each); $cores cores shared by the server and wrk"
  printf '%-8s %12s %9s %9s %14s %12s\n' server "requests/s" "p50 ms" "p99 ms" "peak RSS MiB" "server CPU"
  for s in candor nginx; do
    peak=${RSS[$s]}
    [[ $s == candor ]] && peak=${HWM[$s]}
    printf '%-8s %12s %9s %9s %14s %11s%%\n' "$s" "${RPS[$s]}" "${P50[$s]}" "${P99[$s]}" \
      "$(mib "$peak")" "${CPU[$s]}"
  done
  echo "peak RSS: candor: VmHWM of its one process after its run (peak since start; the VmRSS"
  echo "sampled every 200 ms during the run peaked at $(mib "${RSS[candor]}") MiB). nginx: the highest sum of"
  echo "VmRSS over master + $cores workers, sampled every 200 ms during its run (sum of their VmHWM"
  echo "after the run: $(mib "${HWM[nginx]}") MiB)."
  echo "server CPU: utime+stime of the server's processes during the run / wall time (200% = both cores)."
  for s in candor nginx; do
    [[ -z ${ERRS[$s]} ]] || echo "$s wrk errors: ${ERRS[$s]}"
  done
  awk -v c="${RPS[candor]}" -v n="${RPS[nginx]}" \
    'BEGIN { printf "ratio candor/nginx (requests/s): %.2f\n", (n > 0 ? c / n : 0) }'
}
