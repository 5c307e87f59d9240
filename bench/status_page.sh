#!/usr/bin/env bash
# Candor vs nginx serving the same bytes: `/`, `/api/v2/summary.json`, `/feed.atom` and a resolved
# incident's page, each at 64, 256 and 1,024 connections, the two servers alternating within each
# cell (PAIRS pairs, order swapped every pair), on the same machine in the same run.
#
#   bash bench/status_page.sh
#
# Settings (environment): WRK_THREADS (2), WRK_DURATION (5s per run), WRK_WARMUP (1s),
# WRK_CONNECTIONS_LIST ("64 256 1024"), PAIRS (3), CANDOR_PORT / NGINX_PORT (a free port from
# 18080 / 18180 on), NGINX_HTTP_EXTRA (directives added to nginx's http block), SKIP_BUILD=1
# (reuse target/release/candor as it is, for repeated runs).
#
# What it does: installs nginx and wrk if missing (Debian packages), builds Candor in release
# mode, starts it on a temporary SQLite database and config (log channels write to files in the
# temp folder), seeds three incidents through the v1 API (one resolved), copies the exact bytes
# of each document into an nginx root under the same path (checked with cmp through nginx), then
# measures every cell. wrk sends no Accept-Encoding header, so both servers send the identity
# bytes. Per run: requests/s, CPU time per request (utime+stime of the server's processes over
# the requests served) and peak RSS (VmRSS sampled every 200 ms; nginx: master + workers summed).
# Both servers and wrk share this machine's cores.
# Last line printed: `ratio candor/nginx (requests/s), median over cells: X.XX; lowest cell: Y.YY`.
set -euo pipefail

THREADS=${WRK_THREADS:-2}
DURATION=${WRK_DURATION:-5s}
WARMUP=${WRK_WARMUP:-1s}

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
# Each document Candor serves from its cache is copied byte for byte into nginx's root under the
# same path (curl sends no Accept-Encoding: identity bytes), and checked with cmp through nginx.
root=$tmp/www
mkdir -p "$root/api/v2" "$root/incidents" "$tmp/nginx/logs"
DOCS=("/" "/api/v2/summary.json" "/feed.atom" "/incidents/$resolved_id")
file_of() { # path -> file under the root
  case $1 in
    /) echo "$root/index.html" ;;
    *) echo "$root$1" ;;
  esac
}
for d in "${DOCS[@]}"; do
  "${CURL[@]}" -f -o "$(file_of "$d")" "$CURL_C$d" || die "candor does not serve $d"
done
chmod -R a+rX "$tmp"

cores=$(nproc)
cat >"$tmp/nginx.conf" <<EOF
worker_processes $cores;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 4096; }
http {
  default_type text/html;
  types { application/json json; application/atom+xml atom; }
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
  "${CURL[@]}" -o /dev/null -f "$CURL_N/" 2>/dev/null && break
  kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/nginx.out" >&2; die "nginx exited"; }
  ((i < 50)) || die "nginx not answering after 10 s"
  sleep 0.2
done
for d in "${DOCS[@]}"; do
  "${CURL[@]}" -f -o "$tmp/nginx-copy" "$CURL_N$d" || die "nginx does not serve $d"
  cmp -s "$(file_of "$d")" "$tmp/nginx-copy" || die "nginx does not serve the same bytes for $d"
done
log "nginx on 127.0.0.1:$NPORT (master pid $nginx_pid, $cores workers) serves the same bytes for ${DOCS[*]} (cmp OK)"
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

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

declare -A RPS CPUREQ PEAK
run() { # server url conns -> sets RPS[server], CPUREQ[server] (CPU µs per request), PEAK[server]
  local name=$1 url=$2 conns=$3 out=$tmp/wrk.txt pids t0 t1 reqs
  read -ra pids <<<"$(pids_of "$name")"
  in_bg timeout 60 wrk -t"$THREADS" -c"$conns" -d"$WARMUP" "$url" >/dev/null
  echo 0 >"$tmp/rss-$name"
  sample_rss "$tmp/rss-$name" "${pids[@]}" &
  sampler_pid=$!
  t0=$(cpu_ticks "${pids[@]}")
  in_bg timeout 300 wrk -t"$THREADS" -c"$conns" -d"$DURATION" "$url" >"$out"
  t1=$(cpu_ticks "${pids[@]}")
  stop_pid "$sampler_pid"
  sampler_pid=""
  if grep -qE 'Non-2xx' "$out"; then
    sed 's/^/    /' "$out" >&2
    die "$name answered errors for $url (above)"
  fi
  RPS[$name]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  reqs=$(awk '/requests in/ { print $1 }' "$out")
  CPUREQ[$name]=$(awk -v d=$((t1 - t0)) -v tck="$tck" -v r="$reqs" \
    'BEGIN { printf "%.1f", (r > 0 ? 1e6 * d / tck / r : 0) }')
  PEAK[$name]=$(cat "$tmp/rss-$name")
}

# Every cell (document x connections) runs PAIRS pairs; within a pair the two servers run back
# to back, and the order alternates from pair to pair, so a machine that gets busier or quieter
# during the run moves both servers alike. Reported: the median of the per-pair ratios and
# their range, the median CPU time per request, and the peak RSS.
PAIRS=${PAIRS:-3}
CONNS_LIST=${WRK_CONNECTIONS_LIST:-"64 256 1024"}
results=$tmp/results.tsv
: >"$results"
for d in "${DOCS[@]}"; do
  for c in $CONNS_LIST; do
    for pair in $(seq "$PAIRS"); do
      if ((pair % 2)); then order="candor nginx"; else order="nginx candor"; fi
      for s in $order; do
        if [[ $s == candor ]]; then run candor "$CURL_C$d" "$c"; else run nginx "$CURL_N$d" "$c"; fi
      done
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$d" "$c" "$pair" "${RPS[candor]}" \
        "${RPS[nginx]}" "${CPUREQ[candor]}" "${CPUREQ[nginx]}" "${PEAK[candor]}" \
        "${PEAK[nginx]}" >>"$results"
      log "$d c=$c pair $pair: candor ${RPS[candor]} req/s, nginx ${RPS[nginx]} req/s"
    done
  done
done

# --- 5. report ---------------------------------------------------------------------------
python3 - "$results" "$THREADS" "$DURATION" "$WARMUP" "$PAIRS" "$cores" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import statistics, sys
path, threads, duration, warmup, pairs, cores, load = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
cells = {}
for d, c, _pair, rc, rn, cc, cn, pc, pn in rows:
    cells.setdefault((d, int(c)), []).append(
        (float(rc), float(rn), float(cc), float(cn), int(pc), int(pn)))
print()
print(f"Candor vs nginx serving the same bytes (identity), wrk -t{threads} -d{duration} after a "
      f"{warmup} warm-up each, {pairs} alternating pairs per cell; {cores} cores shared by both "
      f"servers and wrk; 1-minute load average at the end: {load}")
print("| document | conns | candor req/s | nginx req/s | ratio median (range) | CPU µs/req candor / nginx | peak RSS MiB candor / nginx |")
print("| --- | --- | --- | --- | --- | --- | --- |")
all_ratios, cpu_ratios, mem_ratios = [], [], []
for (d, c), runs in sorted(cells.items()):
    ratios = [rc / rn for rc, rn, *_ in runs if rn > 0]
    med = statistics.median(ratios)
    all_ratios.append(med)
    cc = statistics.median(r[2] for r in runs)
    cn = statistics.median(r[3] for r in runs)
    cpu_ratios.append(cc / cn if cn else 0)
    pc = max(r[4] for r in runs) / 1024
    pn = max(r[5] for r in runs) / 1024
    if c >= 1024:
        mem_ratios.append(pc / pn if pn else 0)
    print(f"| `{d}` | {c} | {statistics.median(r[0] for r in runs):.0f} | "
          f"{statistics.median(r[1] for r in runs):.0f} | {med:.2f} ({min(ratios):.2f}–{max(ratios):.2f}) "
          f"| {cc:.0f} / {cn:.0f} | {pc:.1f} / {pn:.1f} |")
print("CPU µs/req: utime+stime of the server's processes during the run / requests served.")
print("peak RSS: the highest VmRSS (candor: its process; nginx: master + workers summed), sampled every 200 ms.")
if mem_ratios:
    print(f"memory at 1,024 connections, candor / nginx (highest cell): {max(mem_ratios):.2f}")
print(f"CPU per request, candor / nginx: median over cells {statistics.median(cpu_ratios):.2f}, "
      f"highest cell {max(cpu_ratios):.2f}")
print(f"ratio candor/nginx (requests/s), median over cells: {statistics.median(all_ratios):.2f}; "
      f"lowest cell: {min(all_ratios):.2f}")
PY
