#!/usr/bin/env bash
# The Alertmanager contract, checked by the real thing: Debian's `prometheus-alertmanager`
# notifies a real `candor serve` on loopback through a webhook receiver, as operators set it up.
# For each of `alertmanager.on_resolved: confirm` and `resolve`, alerts are posted to
# Alertmanager's own API (`POST /api/v2/alerts`) so that a group fires, repeats, a second group
# joins, and both resolve (the opener first, the order that used to leave the incident open);
# in `confirm` mode an alert whose component label names no component follows (logged, told to
# the team). Candor's incidents are read through its API at each step, polling with a bounded deadline.
#
#   bash tests/contracts/alertmanager.sh          # builds the release binary first
#   SKIP_BUILD=1 bash tests/contracts/alertmanager.sh
#
# Prints each check; ends with `N passed, M failed`; exits non-zero if anything failed.
# Called by tests/contracts/run.sh. Takes about a minute; each round is bounded at 80 s.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

bin=${CANDOR_BIN:-target/release/candor}
if [ "${SKIP_BUILD:-0}" != 1 ]; then cargo build --release --quiet || exit 1; fi

# Debian's package, installed once (and not started: policy-rc.d or no systemd here; this script
# runs its own instance on loopback).
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "FAIL: prometheus-alertmanager is not installed and this script is not root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null 2>&1 ||
    { timeout 300 apt-get update -qq &&
      timeout 300 apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null; } ||
    { echo "FAIL: could not install prometheus-alertmanager" >&2; exit 1; }
fi
am_version=$(prometheus-alertmanager --version 2>&1 | head -1)
echo "using: $am_version"

work=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

passed=0
failed=0

# One round: a fresh Candor (fresh database) with `on_resolved: $1`, a fresh Alertmanager
# pointing at it, and the steps checked by check_round (Python, below).
round() {
  local mode=$1 dir="$work/$1"
  mkdir -p "$dir/am"
  local port am_port
  port=$(free_port)
  am_port=$(free_port)
  # Both log channels (public and ops) write lines to one file the checks read.
  sed -e "s|path: \"-\"|path: \"$dir/channels.log\"|" \
    -e "s|on_resolved: confirm|on_resolved: $mode|" \
    config/candor.yaml >"$dir/candor.yaml"
  grep -q "on_resolved: $mode" "$dir/candor.yaml" || { echo "FAIL: could not set on_resolved"; return 1; }
  (
    export DATABASE_URL="sqlite://$dir/candor.db" CANDOR_CONFIG="$dir/candor.yaml"
    "$bin" migrate >/dev/null && "$bin" token create --name alertmanager | tail -1 >"$dir/token"
  ) || { echo "FAIL: candor migrate / token create"; return 1; }
  DATABASE_URL="sqlite://$dir/candor.db" CANDOR_CONFIG="$dir/candor.yaml" \
    "$bin" serve --listen "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
  pids+=($!)
  # The token reaches Alertmanager through a file (credentials_file), not its command line.
  cat >"$dir/alertmanager.yml" <<EOF
global:
  resolve_timeout: 1m
route:
  receiver: candor
  group_by: [alertname, component]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 3s
receivers:
  - name: candor
    webhook_configs:
      - url: http://127.0.0.1:$port/api/v1/integrations/alertmanager
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials_file: $dir/token
EOF
  prometheus-alertmanager --config.file="$dir/alertmanager.yml" --storage.path="$dir/am" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
    --log.level=info >"$dir/alertmanager.log" 2>&1 &
  pids+=($!)

  local out rc
  out=$(timeout 80 python3 - "$mode" "http://127.0.0.1:$port" "http://127.0.0.1:$am_port" \
    "$dir/token" "$dir/channels.log" "$dir/server.log" <<'PY'
import json, sys, time, urllib.request, urllib.error
from datetime import datetime, timedelta, timezone

mode, candor, am, token_file, channels_log, server_log = sys.argv[1:]
token = open(token_file).read().strip()
DEADLINE = 20  # seconds per step: group_wait 1s, group_interval 2s, repeat_interval 3s

def http(method, url, body=None, auth=False):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=5) as r:
        raw = r.read()
        return json.loads(raw) if raw else None

def wait_up(url, what):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"FAIL  {what} did not start")

def poll(what, f):
    """Calls f until it returns a true value, for at most DEADLINE seconds."""
    end = time.monotonic() + DEADLINE
    last = None
    while time.monotonic() < end:
        try:
            last = f()
        except (urllib.error.URLError, OSError, KeyError, IndexError) as e:
            last = repr(e)
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: not seen within {DEADLINE}s (last: {last!r})")

def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

started = datetime.now(timezone.utc) - timedelta(seconds=30)
def alert(name, resolved=False, component="api"):
    now = datetime.now(timezone.utc)
    return {
        "labels": {"alertname": name, "component": component, "severity": "critical"},
        "annotations": {"summary": "Payments are failing at checkout"},
        "startsAt": iso(started),
        "endsAt": iso(now - timedelta(seconds=1) if resolved else now + timedelta(minutes=10)),
        "generatorURL": "http://prometheus.invalid/graph",
    }

def post_alerts(*alerts):
    http("POST", f"{am}/api/v2/alerts", list(alerts))

def incidents(state="all"):
    return http("GET", f"{candor}/api/v1/incidents?state={state}", auth=True)["incidents"]

def incident(i):
    return http("GET", f"{candor}/api/v1/incidents/{i}", auth=True)

def asks():
    try:
        lines = [json.loads(l) for l in open(channels_log)]
    except FileNotFoundError:
        return []
    return [l for l in lines if l.get("kind") == "ops_alert_resolved" and "have resolved" in l.get("text", "")]

checks = []
def ok(what):
    checks.append(what)
    print(f"PASS  [{mode}] {what}", flush=True)

wait_up(f"{candor}/readyz", "candor")
wait_up(f"{am}/-/ready", "alertmanager")

# 1. A group fires: one incident, opened by Alertmanager.
post_alerts(alert("CheckoutErrors"))
only = poll("an incident opened", lambda: incidents())
assert len(only) == 1, only
iid = only[0]["id"]
i = incident(iid)
assert i["status"] == "investigating" and i["impact"] == "major", i
assert [c["id"] for c in i["components"]] == ["api"], i["components"]
assert len(i["alert_groups"]) == 1 and i["alert_groups"][0]["opened"] is True, i["alert_groups"]
assert "CheckoutErrors" in i["alert_groups"][0]["group_key"], i["alert_groups"]
ok(f"firing group opened incident #{iid} (major, api, groupKey {i['alert_groups'][0]['group_key']!r})")

# 2. Alertmanager repeats it (repeat_interval): the same incident, seen again.
first_seen = i["alert_groups"][0]["last_seen_at"]
poll("a repeat notification", lambda: incident(iid)["alert_groups"][0]["last_seen_at"] != first_seen)
assert len(incidents()) == 1, incidents()
ok("repeat notification changed nothing: still one incident")

# 3. A second group about the same component joins the incident.
post_alerts(alert("CheckoutErrors"), alert("CheckoutLatency"))
groups = poll("a second group", lambda: len(incident(iid)["alert_groups"]) == 2 and incident(iid)["alert_groups"])
assert [g["opened"] for g in groups] == [True, False], groups
assert len(incidents()) == 1, incidents()
ok("second group joined the same incident")

# 4. The group that opened the incident resolves first; the other still fires.
post_alerts(alert("CheckoutErrors", resolved=True))
poll("the first group resolved", lambda: incident(iid)["alert_groups"][0]["resolved_at"])
time.sleep(3)  # the outbox's turn, and another group_interval: nothing may happen meanwhile
i = incident(iid)
assert i["status"] == "investigating", f"resolved while a group still fires: {i['status']}"
assert i["alert_groups"][1]["resolved_at"] is None, i["alert_groups"]
assert not asks(), f"the team was asked while a group still fires: {asks()}"
ok("opener resolved first: incident still open, nobody told, second group still firing")

# 5. The second group resolves: the incident is quiet.
post_alerts(alert("CheckoutLatency", resolved=True))
if mode == "resolve":
    poll("the incident resolved", lambda: incident(iid)["status"] == "resolved")
    i = incident(iid)
    assert i["updates"][-1]["kind"] == "resolution", i["updates"][-1]
    ok("last group resolved: incident resolved with the configured all-clear")
    assert not asks(), asks()
    ok("nobody was asked to confirm (resolve mode)")
else:
    poll("the second group resolved", lambda: incident(iid)["alert_groups"][1]["resolved_at"])
    poll("the team asked to confirm", lambda: asks())
    time.sleep(3)  # a repeat of the resolved notification may come; it asks nobody again
    assert len(asks()) == 1, asks()
    assert incident(iid)["status"] == "investigating"
    ok("last group resolved: the team was asked once to confirm; the incident waits for a person")

    # 6. A label value naming no component: the incident opens anyway, the log warns and the
    # team is told (Alertmanager itself discards Candor's answer).
    post_alerts(alert("MainframeDown", component="mainframe"))
    other = poll("a second incident", lambda: [x for x in incidents() if x["id"] != iid])
    j = incident(other[0]["id"])
    assert j["components"] == [] and j["status"] == "investigating", j
    def notices():
        lines = [json.loads(l) for l in open(channels_log)]
        return [l for l in lines if l.get("audience") == "ops" and "`mainframe`" in l.get("text", "")]
    told = poll("the team told about `mainframe`", notices)
    assert "`component`" in told[0]["text"], told[0]["text"]
    warned = [l for l in open(server_log) if "WARN" in l and "mainframe" in l]
    assert warned and "component" in warned[0], warned
    ok(f"unmapped label component=mainframe: incident #{j['id']} opened without components, "
       "a warning logged, the team told")
print(f"{len(checks)} checks")
PY
  )
  rc=$?
  printf '%s\n' "$out"
  passed=$((passed + $(printf '%s\n' "$out" | grep -c '^PASS')))
  if [ "$rc" != 0 ]; then
    failed=$((failed + 1))
    echo "FAIL  [$mode] round failed (exit $rc); Candor's log, then Alertmanager's:"
    tail -15 "$dir/server.log"
    tail -15 "$dir/alertmanager.log"
  fi
  if grep -q 'ERROR\|panicked' "$dir/server.log"; then
    failed=$((failed + 1))
    echo "FAIL  [$mode] the server logged errors:"
    grep 'ERROR\|panicked' "$dir/server.log" | head -10
  fi
  if grep -q 'level=error' "$dir/alertmanager.log"; then
    failed=$((failed + 1))
    echo "FAIL  [$mode] Alertmanager logged errors (a notification Candor refused?):"
    grep 'level=error' "$dir/alertmanager.log" | head -10
  fi
  stop_all
}

round confirm
round resolve

printf '\nalertmanager contract (%s): %s passed, %s failed\n' "$am_version" "$passed" "$failed"
[ "$failed" = 0 ]
