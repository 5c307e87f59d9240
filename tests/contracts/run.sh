#!/usr/bin/env bash
# Contracts with other software, checked by that software itself against a real `candor serve`
# on loopback (issue: "Contracts with other software"):
#   - promtool (Prometheus' own checker) on /metrics in the text format, and the official Python
#     client's parser on its OpenMetrics answer;
#   - the Python `icalendar` parser and a strict RFC 5545 line check on /maintenance.ics;
#   - feedparser on /feed.atom and /feed.rss (no `bozo`: the feed parsed cleanly);
#   - openapi-spec-validator on /api/v1/openapi.json;
#   - clients generated from that document by openapi-python-client and openapi-typescript
#     (+ openapi-fetch, tsc --strict) run declare/update/409/resolve (tests/contracts/clients.sh);
#   - Debian's prometheus-alertmanager notifying Candor through a webhook receiver
#     (tests/contracts/alertmanager.sh, run last with its own server and bound: 3 minutes).
# Installs what it needs (Debian's prometheus and prometheus-alertmanager packages; PyPI for
# the rest).
#
#   bash tests/contracts/run.sh                  # builds the release binary first
#   SKIP_BUILD=1 bash tests/contracts/run.sh
#
# Ends with `N passed, M failed`; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

bin=${CANDOR_BIN:-target/release/candor}
if [ "${SKIP_BUILD:-0}" != 1 ]; then cargo build --release --quiet || exit 1; fi

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }

if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 ||
    { apt-get update -qq && timeout 300 apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
fi
timeout 300 python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  'icalendar>=6,<7' 'feedparser>=6,<7' 'openapi-spec-validator>=0.7,<0.8' 'prometheus-client>=0.20,<1'

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export DATABASE_URL="sqlite://$work/candor.db"
sed -e "s|path: \"-\"|path: \"$work/public.log\"|" config/candor.yaml > "$work/candor.yaml"
export CANDOR_CONFIG="$work/candor.yaml"
"$bin" migrate >/dev/null
token=$("$bin" token create --name contracts | tail -1)
"$bin" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { echo "FAIL: the server did not start"; tail -20 "$work/server.log"; exit 1; }

api() { curl -fsS -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
# One incident with an update, and a window typed over two lines in a browser (CRLF).
api -d '{"title":"Checkout errors","message":"Payments fail for some cards; we are on it.","eta_in":"2h"}' "$base/api/v1/incidents"
api -d '{"message":"Found it: a certificate expired at the payment gateway.","status":"identified"}' "$base/api/v1/incidents/1/updates"
starts=$(date -u -d '+3 days' +%Y-%m-%dT02:00:00Z)
api -d "{\"title\":\"Database upgrade\",\"description\":\"Moving to PostgreSQL 17.\\r\\nExpect a short pause, about a minute, while we switch over to the new primary server.\",\"starts_at\":\"$starts\",\"duration\":\"2h\"}" "$base/api/v1/maintenances"
sleep 1 # the page cache refreshes after each commit; give it its turn

# promtool, both formats.
if curl -fsS "$base/metrics" | promtool check metrics; then
  pass "promtool check metrics (Prometheus text format)"
else
  fail "promtool check metrics (Prometheus text format)"
fi
# promtool (2.42 in Debian 12) reads only the classic text format; OpenMetrics, which Prometheus
# asks for first, is checked by the official Python client's OpenMetrics parser.
if curl -fsS -H 'Accept: application/openmetrics-text;version=1.0.0' "$base/metrics" >"$work/om.txt" &&
  python3 - "$work/om.txt" <<'PY'
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(open(sys.argv[1]).read()))
names = {f.name for f in families}
assert "candor_promises" in names, names
print(f"OpenMetrics: {len(families)} families")
PY
then
  pass "/metrics in OpenMetrics (as Prometheus asks for it): prometheus_client's parser"
else
  fail "/metrics in OpenMetrics"
fi

# iCalendar: the icalendar parser, and RFC 5545's line rules checked strictly.
curl -fsS "$base/maintenance.ics" -o "$work/m.ics"
if python3 - "$work/m.ics" <<'PY'
import sys, icalendar
raw = open(sys.argv[1], "rb").read()
cal = icalendar.Calendar.from_ical(raw)
events = [c for c in cal.walk("VEVENT")]
assert len(events) == 1, f"{len(events)} events"
desc = str(events[0]["DESCRIPTION"])
assert "17.\nExpect" in desc, repr(desc)
for i, b in enumerate(raw):
    if b == 0x0D: assert raw[i + 1:i + 2] == b"\n", f"bare CR at byte {i}"
    if b == 0x0A: assert raw[i - 1:i] == b"\r", f"bare LF at byte {i}"
lines = raw.rstrip(b"\r\n").split(b"\r\n")
long = [l for l in lines if len(l) > 75]
assert not long, f"lines over 75 octets: {long}"
for name in (b"PRODID:", b"VERSION:"):
    n = sum(1 for l in lines if l.startswith(name))
    assert n == 1, f"{name!r} {n} times"
print(f"icalendar {icalendar.__version__}: {len(events)} event, {len(lines)} lines")
PY
then pass "/maintenance.ics: icalendar parses it; one PRODID; CRLF only at line ends; 75-octet folding"
else fail "/maintenance.ics"
fi

# Feeds: feedparser, without bozo.
for feed in feed.atom feed.rss; do
  curl -fsS "$base/$feed" -o "$work/$feed"
  if python3 - "$work/$feed" <<'PY'
import sys, feedparser
d = feedparser.parse(open(sys.argv[1], "rb").read())
assert not d.bozo, f"bozo: {d.bozo_exception!r}"
assert d.entries, "no entries"
print(f"feedparser {feedparser.__version__}: {d.version}, {len(d.entries)} entries")
PY
  then pass "/$feed: feedparser, no bozo"
  else fail "/$feed"
  fi
done

# OpenAPI: the reference validator.
curl -fsS "$base/api/v1/openapi.json" -o "$work/openapi.json"
if python3 -m openapi_spec_validator "$work/openapi.json"; then
  pass "/api/v1/openapi.json: openapi-spec-validator"
else
  fail "/api/v1/openapi.json: openapi-spec-validator"
fi

# Generated clients (Python and TypeScript) run the incident script's flow against this server.
if timeout 600 bash tests/contracts/clients.sh "$base" "$token"; then
  pass "generated clients (openapi-python-client; openapi-typescript + openapi-fetch, tsc --strict): declare, update with If-Match, 409, resolve"
else
  fail "generated clients (tests/contracts/clients.sh)"
fi

# Alertmanager: its own Candor servers (one per `on_resolved` mode) and its own report.
if SKIP_BUILD=1 CANDOR_BIN="$bin" timeout 180 bash tests/contracts/alertmanager.sh; then
  pass "prometheus-alertmanager's webhook: fires, repeats, joins, resolves (confirm and resolve)"
else
  fail "prometheus-alertmanager's webhook (tests/contracts/alertmanager.sh)"
fi

if grep -q '"level":"ERROR"\|panicked' "$work/server.log"; then
  fail "the server logged errors:"
  grep '"level":"ERROR"\|panicked' "$work/server.log" | head -10
fi
printf '\n%s passed, %s failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
