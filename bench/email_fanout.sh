#!/usr/bin/env bash
# Email fan-out vs Postfix's own load generator: how fast Candor mails one update to 100,000
# confirmed subscribers, compared with the ceiling of the same SMTP sink measured by
# smtp-source, on the same machine, in the same run.
#
#   bash bench/email_fanout.sh
#
# Settings (environment): SUBSCRIBERS (100000), CONNECTIONS (4: SMTP connections, the same for
# both), PIPELINING (true: Candor pipelines, as smtp-sink offers it; false: one command at a
# time, as smtp-source does), SINK_PORT (2525), CANDOR_PORT (18280), SKIP_BUILD=1 (reuse
# target/release/candor).
#
# What it does: installs postfix (for smtp-sink and smtp-source) and python3's aiosmtpd if
# missing; builds Candor in release mode; measures the size of one Candor update mail (a
# one-subscriber run into tests/smtp/sink.py, which stores it); fills a fresh SQLite database
# with SUBSCRIBERS confirmed subscribers; starts smtp-sink on loopback; runs smtp-source with
# CONNECTIONS sessions, the same message size and -d (one connection per session, reused, as a
# pool does) for SUBSCRIBERS messages; then starts Candor with an email channel of CONNECTIONS
# pooled connections into the same sink, declares one incident and times from the API call to
# the email delivery being recorded as delivered. Candor's peak RSS is its VmHWM from
# /proc/<pid>/status. Everything shares this machine's cores.
# With PIPELINING=true it also runs bench/smtp_pipeline.py, a minimal client that pipelines as
# Candor does (smtp-source cannot), into the same sink with the same message size and
# connections: the like-for-like anchor for a pipelining sender.
# Last line printed: `ratio candor/pipelining client (messages/s): X.XX` with PIPELINING=true,
# `ratio candor/smtp-source (messages/s): X.XX` with PIPELINING=false.
set -euo pipefail

N=${SUBSCRIBERS:-100000}
CONNS=${CONNECTIONS:-4}
PIPELINING=${PIPELINING:-true}
SINK_PORT=${SINK_PORT:-2525}
CANDOR_PORT=${CANDOR_PORT:-18280}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { printf '[email_fanout] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- 1. packages -------------------------------------------------------------------------
if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
  log "installing postfix (smtp-sink, smtp-source)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postfix >/dev/null
fi
python3 -c 'import aiosmtpd' 2>/dev/null || pip install -q aiosmtpd
command -v curl >/dev/null || die "curl is needed"

# --- 2. build ----------------------------------------------------------------------------
if [ "${SKIP_BUILD:-}" != 1 ]; then cargo build --release -q; fi
bin=${CANDOR_BIN:-"$repo/target/release/candor"}
[ -x "$bin" ] || die "no $bin (build it, or unset SKIP_BUILD)"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; if [ "${KEEP_WORK:-}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

# One update's words: about 1.5 KB, so the mail (text and HTML parts) is about 4 KB.
words=$(python3 -c 'print(("We are investigating elevated error rates on the public API. " * 25).strip())')

config() { # $1 folder, $2 smtp port
  cat >"$1/candor.yaml" <<YAML
site: { name: "Bench Cloud", public_url: "https://status.bench.test", support_contact: "help@bench.test" }
server: { listen: "127.0.0.1:$CANDOR_PORT" }
database: { url: "sqlite://$1/candor.db", max_connections: 8 }
components: [ { id: api, name: "Public API" } ]
outbox: { lease: 60s, poll_interval: 100ms }
channels:
  log: { type: log, path: "$1/public.log" }
  email: { type: email, smtp_url: "smtp://127.0.0.1:$2", from: "Bench Status <status@bench.test>", token_secret: "bench-secret-bench-secret-bench-secret-0123", connections: $CONNS, pipelining: $PIPELINING, page_size: 1000, limits: { timeout: 30s } }
YAML
}

fill() { # $1 folder, $2 count: confirmed subscribers to everything
  "$bin" --config "$1/candor.yaml" migrate >/dev/null
  python3 - "$1/candor.db" "$2" <<'PY'
import sqlite3, sys, os, base64
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
db.executemany(
    "INSERT INTO subscribers (email, components, unsubscribe_salt, created_at, confirmed_at) VALUES (?, '', ?, 0, 0)",
    ((f"user{i:06d}@bench.test", base64.urlsafe_b64encode(os.urandom(24)).decode()) for i in range(n)))
db.commit()
PY
}

# A process's CPU time so far (user + system), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_to_s() { python3 -c "import os; print(f'{$1 / os.sysconf(\"SC_CLK_TCK\"):.1f}')"; }

# Starts Candor in $1, declares one incident, waits for the email delivery; prints seconds.
run_candor() {
  local dir=$1
  "$bin" --config "$dir/candor.yaml" serve >"$dir/candor.out" 2>&1 &
  candor_pid=$!; pids+=("$candor_pid")
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$CANDOR_PORT/healthz" >/dev/null && break; sleep 0.1; done
  local token
  token=$("$bin" --config "$dir/candor.yaml" token create --name "bench-$RANDOM" | grep -o 'candor_[A-Za-z0-9_-]*' | head -1)
  local start end state
  start=$(date +%s.%N)
  curl -sf -X POST "http://127.0.0.1:$CANDOR_PORT/api/v1/incidents" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' \
    -d "{\"title\":\"Elevated API errors\",\"impact\":\"major\",\"components\":{\"api\":\"partial_outage\"},\"eta_in\":\"1h\",\"message\":\"$words\"}" >/dev/null
  while :; do
    # The email delivery's state (keys come sorted: channel before state), without starting
    # an interpreter every poll.
    state=$(curl -sf "http://127.0.0.1:$CANDOR_PORT/api/v1/incidents/1" -H "Authorization: Bearer $token" |
      grep -o '"channel":"email"[^}]*' | grep -o '"state":"[a-z_]*"' | cut -d'"' -f4 || true)
    [ "$state" = delivered ] && break
    [ "$state" = dead ] && die "the email delivery died: see $dir/candor.out"
    sleep 0.1
  done
  end=$(date +%s.%N)
  awk '/VmHWM/ {print $2}' "/proc/$candor_pid/status" >"$dir/rss_kb"
  cpu_ticks "$candor_pid" >"$dir/cpu_ticks"
  kill "$candor_pid"; wait "$candor_pid" 2>/dev/null || true
  python3 -c "print($end - $start)"
}

# --- 3. the size of one Candor mail ------------------------------------------------------
mkdir -p "$work/cal" "$work/cal/mail"
cal_port=$((SINK_PORT + 1))
python3 tests/smtp/sink.py "$work/cal/mail" "$cal_port" < <(sleep 600 2>/dev/null) >/dev/null 2>&1 &
pids+=($!)
sleep 1
config "$work/cal" "$cal_port"
fill "$work/cal" 1
run_candor "$work/cal" >/dev/null
mail=$(ls "$work/cal/mail"/*.eml | head -1)
# The stored copy starts with the sink's own X-Envelope-To line: not part of the message.
size=$(( $(wc -c <"$mail") - $(head -1 "$mail" | wc -c) ))
log "one Candor update mail: $size bytes"

# --- 4. the sink and its ceiling ---------------------------------------------------------
smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 &
sink_pid=$!; pids+=("$sink_pid")
sleep 0.5
log "smtp-source: $N messages of $size bytes over $CONNS reused connections"
sink_before=$(cpu_ticks "$sink_pid")
start=$(date +%s.%N)
TIMEFORMAT='%U %S'
{ time smtp-source -d -s "$CONNS" -l "$size" -m "$N" -f status@bench.test -t user@bench.test "127.0.0.1:$SINK_PORT"; } 2>"$work/source_time"
end=$(date +%s.%N)
source_cpu=$(awk '{printf "%.1f", $1 + $2}' "$work/source_time")
sink_source_cpu=$(ticks_to_s $(( $(cpu_ticks "$sink_pid") - sink_before )))
source_rate=$(python3 -c "print(round($N / ($end - $start)))")
log "smtp-source: $source_rate messages/s"

# A pipelining anchor (bench/smtp_pipeline.py: one round trip per message, as RFC 2920 allows
# and Candor does), measured into the same sink, when Candor pipelines.
if [ "$PIPELINING" = true ]; then
  log "pipelining client: $N messages of $size bytes over $CONNS connections"
  sink_before=$(cpu_ticks "$sink_pid")
  pipe_out=$(timeout 300 python3 bench/smtp_pipeline.py 127.0.0.1 "$SINK_PORT" "$CONNS" "$N" "$size")
  sink_pipe_cpu=$(ticks_to_s $(( $(cpu_ticks "$sink_pid") - sink_before )))
  pipe_rate=$(awk '{print $1}' <<<"$pipe_out")
  log "pipelining client: $pipe_out"
fi

# --- 5. Candor's fan-out -----------------------------------------------------------------
mkdir -p "$work/run"
config "$work/run" "$SINK_PORT"
log "filling the database with $N confirmed subscribers"
fill "$work/run" "$N"
log "Candor: one update to $N subscribers over $CONNS pooled connections (pipelining: $PIPELINING)"
sink_before=$(cpu_ticks "$sink_pid")
secs=$(run_candor "$work/run")
sink_candor_cpu=$(ticks_to_s $(( $(cpu_ticks "$sink_pid") - sink_before )))
candor_rate=$(python3 -c "print(round($N / $secs))")

echo "message size (bytes): $size"
echo "smtp-source into smtp-sink (messages/s): $source_rate"
echo "candor fan-out into smtp-sink (messages/s): $candor_rate ($N in ${secs%.*}.$(echo "$secs" | cut -d. -f2 | cut -c1-2) s)"
echo "CPU seconds: smtp-source $source_cpu (smtp-sink meanwhile $sink_source_cpu); candor $(ticks_to_s "$(cat "$work/run/cpu_ticks")") since its start (smtp-sink meanwhile $sink_candor_cpu)"
echo "candor peak RSS (MB): $(python3 -c "print(round($(cat "$work/run/rss_kb") / 1024, 1))")"
if [ "$PIPELINING" = true ]; then
  echo "pipelining client into smtp-sink (messages/s): $pipe_rate ($pipe_out; smtp-sink meanwhile $sink_pipe_cpu s CPU)"
  echo "ratio candor/smtp-source (messages/s; smtp-source cannot pipeline): $(python3 -c "print(f'{$candor_rate / $source_rate:.2f}')")"
  echo "ratio candor/pipelining client (messages/s): $(python3 -c "print(f'{$candor_rate / $pipe_rate:.2f}')")"
else
  echo "ratio candor/smtp-source (messages/s): $(python3 -c "print(f'{$candor_rate / $source_rate:.2f}')")"
fi
