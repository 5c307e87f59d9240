#!/usr/bin/env bash
# End-to-end check of Candor's public status page in a real browser.
#
#   bash tests/e2e/run.sh
#
# Installs what it needs (idempotently, from Debian and npm only; no browser download:
# Playwright drives Debian's /usr/bin/chromium), builds and starts Candor on 127.0.0.1 with a
# throwaway SQLite database, seeds incidents through the HTTP API, then:
#   - tests/e2e/e2e.mjs (Playwright + axe-core): screenshots, visible content, accessibility
#     at desktop and phone widths, no-JavaScript rendering, local-time enhancement, keyboard;
#   - tests/e2e/console.mjs: the operator console flow (sign in, declare with preview and
#     calibration hint, public page, revise the ETA, resolve), screenshots in
#     target/e2e-screenshots/;
#   - tests/e2e/dates.mjs: an incident whose estimate is past midnight and a window 3 days
#     ahead, read in New York and Tokyo: every time carries its day, in one 24-hour format;
#   - tests/e2e/roles.mjs: a responder refused the admins' pages, an admin adding an operator and
#     a scoped token, 50 parallel wrong passwords from one client (at most 5 checked) while a
#     colleague signs in, and an unlock from the console;
#   - tests/e2e/widths.mjs: every console and public page at 390 and 1,280 px, with a long
#     title and an incident on every component, is no wider than the viewport (screenshots in
#     out/widths/), axe-core on every console page, the subscribe form's tap targets, and an
#     incident declared through the API appearing on the open dashboard within 2 s;
#   - tests/e2e/inbox.mjs: a second Candor listening to a stand-in Mastodon; customers reply, an
#     operator claims and answers; the inbox with claimed, answered and waiting conversations
#     (screenshots inbox*.png in target/e2e-screenshots/);
#   - tests/e2e/honesty.mjs: the promise record on the status page, a corrected update, and a
#     postmortem written, previewed and published from the console with an overdue action item
#     (screenshots target/e2e-screenshots/honesty-*.png);
#   - the Nu Html Checker (vnu.jar) on the HTML of every public page kind and console page.
# Ends with the line `N passed, M failed` and exits non-zero if anything failed. Screenshots
# and logs land in tests/e2e/out/ (ignored by git). The server is always stopped.
set -uo pipefail

E2E_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$E2E_DIR/../.." && pwd)"
OUT="$E2E_DIR/out"
cd "$ROOT" || exit 1

passed=0
failed=0
server_pid=""
tmp=""
started_at=$(date +%s)

log() { printf '\n==> %s  [%ss]\n' "$*" "$(($(date +%s) - started_at))"; }
pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }

summary() {
  printf '\n(e2e took %ss)\n' "$(($(date +%s) - started_at))"
  printf '%s passed, %s failed\n' "$passed" "$failed"
}

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$tmp" ] && [ -d "$tmp" ]; then
    cp "$tmp"/candor.stderr.log "$tmp"/candor.stdout.log "$OUT"/ 2>/dev/null || true
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A step that the rest cannot do without: record the failure, summarise, stop.
fatal() {
  fail "$*"
  if [ -n "$tmp" ] && [ -f "$tmp/candor.stderr.log" ]; then
    echo "--- last lines of Candor's log ---"
    tail -n 30 "$tmp/candor.stderr.log"
  fi
  summary
  exit 1
}

# ---------------------------------------------------------------------------------------------
log "dependencies"

apt_missing=()
dpkg -s chromium >/dev/null 2>&1 || apt_missing+=(chromium)
# Any installed Java runtime will do (the image may ship openjdk-17 without the default-* alias).
if ! dpkg -s default-jre-headless >/dev/null 2>&1 && ! command -v java >/dev/null 2>&1; then
  apt_missing+=(default-jre-headless)
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "installing ${apt_missing[*]} (apt)"
  if [ "$(id -u)" != 0 ]; then fatal "missing ${apt_missing[*]} and not root to apt-get install it"; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fatal "apt-get update"
  apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null \
    || fatal "apt-get install ${apt_missing[*]}"
fi
[ -x /usr/bin/chromium ] || fatal "/usr/bin/chromium is not there after installing chromium"
command -v java >/dev/null 2>&1 || fatal "no java on PATH after installing default-jre-headless"

# npm packages, from the committed lock file. --ignore-scripts: vnu-jar's postinstall would try
# to download a Java runtime, which we neither need nor may fetch.
lock_sum=$(sha256sum "$E2E_DIR/package-lock.json" | cut -d' ' -f1)
stamp="$E2E_DIR/node_modules/.e2e-lock-sha256"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ] \
  || [ ! -f "$E2E_DIR/node_modules/playwright-core/package.json" ]; then
  echo "installing npm packages (npm ci)"
  (cd "$E2E_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
    || fatal "npm ci in tests/e2e"
  echo "$lock_sum" >"$stamp"
fi
VNU_JAR="$E2E_DIR/node_modules/vnu-jar/build/dist/vnu.jar"
AXE_JS="$E2E_DIR/node_modules/axe-core/axe.min.js"
[ -f "$VNU_JAR" ] || fatal "vnu.jar not found at $VNU_JAR"
[ -f "$AXE_JS" ] || fatal "axe.min.js not found at $AXE_JS"
pass "dependencies installed (chromium, java, playwright-core, axe-core, vnu-jar)"

# ---------------------------------------------------------------------------------------------
log "build and start Candor"

rm -rf "$OUT"
mkdir -p "$OUT"
tmp=$(mktemp -d /tmp/candor-e2e.XXXXXX)

if ! cargo build --quiet 2>"$tmp/build.log"; then
  cat "$tmp/build.log"
  fatal "cargo build"
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/candor"

port=$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
[ -n "$port" ] || fatal "finding a free port"
BASE="http://127.0.0.1:$port"

# The shipped config, with a throwaway database and this run's address; plus, for the width
# checks, nine more components (one with a long name without spaces) and an email channel (so
# the status page has its subscribe form) whose mail server is a closed port on this machine.
awk -v db="sqlite://$tmp/candor.db" -v url="$BASE" '
  /^[^ #]/ { section = $1 }
  section == "database:" && $1 == "url:" { sub(/url:.*/, "url: \"" db "\"") }
  section == "site:" && $1 == "public_url:" { sub(/public_url:.*/, "public_url: \"" url "\"") }
  section == "server:" && $1 == "trusted_proxies:" { sub(/trusted_proxies:.*/, "trusted_proxies: [\"127.0.0.1/32\"]") }
  { print }
  $0 == "components:" {
    for (i = 1; i <= 8; i++) printf "  - id: extra-%d\n    name: \"Regional edge cluster number %d\"\n    group: platform\n", i, i
    print "  - id: long-name"
    print "    name: \"Asynchronous-webhook-delivery-pipeline-for-enterprise-integrations\""
  }
  $0 == "channels:" {
    print "  e2e-email:"
    print "    type: email"
    print "    smtp_url: \"smtp://127.0.0.1:9\""
    print "    from: \"E2E Status <status@example.com>\""
    print "    token_secret: \"e2e-only-token-secret-0123456789abcdef\""
  }' config/candor.yaml >"$tmp/candor.yaml"
grep -q "sqlite://$tmp/candor.db" "$tmp/candor.yaml" || fatal "pointing database.url at the temp dir"
# roles.mjs tells clients apart by X-Forwarded-For, as behind a reverse proxy.
grep -q 'trusted_proxies: \["127.0.0.1/32"\]' "$tmp/candor.yaml" || fatal "setting server.trusted_proxies"
CONF=(--config "$tmp/candor.yaml")

"$BIN" "${CONF[@]}" check-config >/dev/null 2>"$tmp/check.log" || { cat "$tmp/check.log"; fatal "candor check-config"; }

token=$("$BIN" "${CONF[@]}" token create --name e2e 2>"$tmp/token.log" | tail -n 1)
case "$token" in
  candor_*) ;;
  *) cat "$tmp/token.log"; fatal "candor token create (last line was '$token')" ;;
esac

"$BIN" "${CONF[@]}" serve --listen "127.0.0.1:$port" >"$tmp/candor.stdout.log" 2>"$tmp/candor.stderr.log" &
server_pid=$!

ready=false
for _ in $(seq 1 100); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/readyz")" = 200 ]; then
    ready=true; break
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
[ "$ready" = true ] || fatal "GET /readyz did not answer 200 within 20 s"
pass "Candor serves on $BASE and /readyz is 200"

# ---------------------------------------------------------------------------------------------
log "seed incidents through the API"

# POST JSON; prints the body, fails the step unless the status is the expected one.
api() { # method path expected-status body [extra curl args...]
  local method=$1 path=$2 want=$3 body=$4; shift 4
  local code
  code=$(curl -sS --max-time 10 -o "$tmp/resp.json" -w '%{http_code}' -X "$method" "$BASE$path" \
    -H "Authorization: Bearer $token" -H "Content-Type: application/json" "$@" -d "$body") || code=000
  if [ "$code" != "$want" ]; then
    echo "$method $path -> $code (wanted $want): $(head -c 2000 "$tmp/resp.json" 2>/dev/null)" >&2
    return 1
  fi
  cat "$tmp/resp.json"
}
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];console.log(v===undefined?"":v)})' "$1"; }

RESOLVED_TITLE="Delayed password-reset emails"
ACTIVE_TITLE="Elevated API error rates"

resp=$(api POST /api/v1/incidents 201 '{
  "title": "'"$RESOLVED_TITLE"'",
  "impact": "minor",
  "status": "investigating",
  "message": "Password-reset emails arrive up to 20 minutes late. We are looking into it.",
  "components": { "email": "degraded_performance" },
  "eta_in": "30m"
}') || fatal "declare the incident to resolve"
resolved_id=$(field id <<<"$resp")
api POST "/api/v1/incidents/$resolved_id/resolve" 200 \
  '{ "message": "The mail queue has drained; emails are on time again." }' >/dev/null \
  || fatal "resolve incident $resolved_id"

resp=$(api POST /api/v1/incidents 201 '{
  "title": "'"$ACTIVE_TITLE"'",
  "impact": "major",
  "status": "investigating",
  "message": "About 20% of API requests fail with 502, and the dashboard loads slowly. We are looking into it.",
  "components": { "api": "partial_outage", "web": "degraded_performance" },
  "eta_in": "45m"
}' -H "Idempotency-Key: e2e-active-declare") || fatal "declare the active incident"
active_id=$(field id <<<"$resp")
version=$(field version <<<"$resp")
api POST "/api/v1/incidents/$active_id/updates" 200 '{
  "message": "A bad deploy; we are rolling it back region by region.",
  "status": "identified",
  "eta_in": "90m",
  "eta_reason": "the rollback takes longer than a restart",
  "components": { "api": "partial_outage", "web": "degraded_performance" }
}' -H "If-Match: \"$version\"" >/dev/null || fatal "update incident $active_id with a revised estimate"
pass "seeded: resolved incident #$resolved_id, active incident #$active_id (estimate revised)"

# The page cache refreshes within about a second.
fresh=false
for _ in $(seq 1 30); do
  if curl -s --max-time 2 "$BASE/" | grep -qF "$ACTIVE_TITLE"; then fresh=true; break; fi
  sleep 0.1
done
if [ "$fresh" = true ]; then pass "GET / shows the active incident within 3 s"; else fatal "GET / did not show '$ACTIVE_TITLE' within 3 s"; fi

# ---------------------------------------------------------------------------------------------
log "browser checks (Playwright + axe-core, Chromium headless)"

E2E_BASE="$BASE" E2E_ACTIVE_ID="$active_id" E2E_RESOLVED_ID="$resolved_id" \
  E2E_ACTIVE_TITLE="$ACTIVE_TITLE" E2E_RESOLVED_TITLE="$RESOLVED_TITLE" \
  E2E_OUT="$OUT" E2E_AXE="$AXE_JS" E2E_RESULTS="$tmp/browser-results" \
  timeout -k 10 300 node "$E2E_DIR/e2e.mjs"
node_rc=$?
if [ -f "$tmp/browser-results" ]; then
  read -r bp bf <"$tmp/browser-results"
  passed=$((passed + bp)); failed=$((failed + bf))
  if [ "$node_rc" != 0 ] && [ "$bf" = 0 ]; then fail "e2e.mjs exited $node_rc"; fi
else
  fail "e2e.mjs stopped before reporting (exit $node_rc)"
fi

# ---------------------------------------------------------------------------------------------
log "operator console (Playwright, Chromium headless)"

# After the public-page checks, which expect exactly the incidents seeded above. Three resolved
# major incidents give the declare form's calibration hint some history to speak from.
for n in 1 2 3; do
  resp=$(api POST /api/v1/incidents 201 '{ "title": "Past checkout outage '"$n"'", "impact": "major",
    "message": "Payments fail.", "components": { "api": "major_outage" } }') || fatal "seed past incident $n"
  api POST "/api/v1/incidents/$(field id <<<"$resp")/resolve" 200 '{ "message": "Fixed." }' >/dev/null \
    || fatal "resolve past incident $n"
done
OPERATOR_EMAIL="e2e-operator@example.com"
OPERATOR_PASSWORD="e2e-operator-password-$RANDOM$RANDOM"
if printf '%s\n' "$OPERATOR_PASSWORD" | "$BIN" "${CONF[@]}" operator add --email "$OPERATOR_EMAIL" --role responder \
  >"$tmp/operator.log" 2>&1; then
  pass "candor operator add (password from stdin)"
else
  cat "$tmp/operator.log"
  fail "candor operator add"
fi
SHOTS="$ROOT/target/e2e-screenshots"
E2E_BASE="$BASE" E2E_OPERATOR_EMAIL="$OPERATOR_EMAIL" E2E_OPERATOR_PASSWORD="$OPERATOR_PASSWORD" \
  E2E_ACTIVE_TITLE="$ACTIVE_TITLE" E2E_SHOTS="$SHOTS" E2E_OUT="$OUT" E2E_RESULTS="$tmp/console-results" \
  timeout -k 10 180 node "$E2E_DIR/console.mjs"
node_rc=$?
if [ -f "$tmp/console-results" ]; then
  read -r bp bf <"$tmp/console-results"
  passed=$((passed + bp)); failed=$((failed + bf))
  if [ "$node_rc" != 0 ] && [ "$bf" = 0 ]; then fail "console.mjs exited $node_rc"; fi
  echo "console screenshots: $SHOTS"
else
  fail "console.mjs stopped before reporting (exit $node_rc)"
fi

# ---------------------------------------------------------------------------------------------
log "dates: an incident across midnight, a revised estimate, a future window (dates.mjs)"

# After the other browser checks, which expect exactly their own incidents. The server runs on
# the real clock and the API takes no start time, so the times are relative to now: declared
# now with an estimate of 02:00 UTC tomorrow (the incident spans midnight in the site's zone,
# UTC), revised to 03:30 UTC tomorrow with a reason; a window 3 days ahead, 02:00-04:00 UTC.
midnight=$(( $(date -u +%s) / 86400 * 86400 ))
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
first_eta=$(iso $(( midnight + 86400 + 2 * 3600 )))
revised_eta=$(iso $(( midnight + 86400 + 3 * 3600 + 1800 )))
window_start=$(iso $(( midnight + 3 * 86400 + 2 * 3600 )))
window_end=$(iso $(( midnight + 3 * 86400 + 4 * 3600 )))
DATED_TITLE="Overnight database failover"
dated_id=""
maintenance_id=""
if resp=$(api POST /api/v1/incidents 201 '{
  "title": "'"$DATED_TITLE"'", "impact": "major",
  "message": "The primary database failed over; writes are slow while replicas catch up.",
  "components": { "api": "major_outage" }, "eta": "'"$first_eta"'"
}'); then
  dated_id=$(field id <<<"$resp")
  api POST "/api/v1/incidents/$dated_id/updates" 200 '{
    "message": "Replicas are catching up more slowly than planned.",
    "eta": "'"$revised_eta"'", "eta_reason": "replica catch-up is slower than planned"
  }' >/dev/null || fail "revise the estimate of incident $dated_id"
fi
if resp=$(api POST /api/v1/maintenances 201 '{
  "title": "Database upgrade", "components": ["api"],
  "starts_at": "'"$window_start"'", "ends_at": "'"$window_end"'"
}'); then
  maintenance_id=$(field id <<<"$resp")
fi
if [ -n "$dated_id" ] && [ -n "$maintenance_id" ]; then
  pass "seeded: incident #$dated_id (estimate $first_eta, revised to $revised_eta), window #$maintenance_id ($window_start to $window_end)"
  sleep 1  # the page cache refreshes within about a second
  E2E_BASE="$BASE" E2E_OUT="$OUT" E2E_RESULTS="$tmp/dates-results" E2E_DATED_ID="$dated_id" \
    E2E_MAINTENANCE_ID="$maintenance_id" E2E_REVISED_ETA="$revised_eta" E2E_FIRST_ETA="$first_eta" \
    E2E_WINDOW_START="$window_start" E2E_WINDOW_END="$window_end" \
    timeout -k 10 180 node "$E2E_DIR/dates.mjs"
  node_rc=$?
  if [ -f "$tmp/dates-results" ]; then
    read -r bp bf <"$tmp/dates-results"
    passed=$((passed + bp)); failed=$((failed + bf))
    if [ "$node_rc" != 0 ] && [ "$bf" = 0 ]; then fail "dates.mjs exited $node_rc"; fi
  else
    fail "dates.mjs stopped before reporting (exit $node_rc)"
  fi
else
  fail "seeding the dates scenario"
fi

# ---------------------------------------------------------------------------------------------
log "widths: every page at 390 and 1,280 px, axe on the console, live dashboard (widths.mjs)"

# A title of 120 characters without a space, on an incident that affects every component, and
# a window with a long title; a subscriber with a long address; an admin (the width checks see
# the admin-only pages too).
LONG_TITLE=$(printf 'Checkout%.0s' $(seq 1 15))
every=$(curl -s --max-time 10 "$BASE/api/v1/components" \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const c=JSON.parse(s).components;console.log(JSON.stringify(Object.fromEntries(c.map((x,i)=>[x.id,["degraded_performance","partial_outage","major_outage"][i%3]]))))})')
long_id=""
window_id=""
if resp=$(api POST /api/v1/incidents 201 '{ "title": "'"$LONG_TITLE"'", "impact": "critical",
  "message": "'"$LONG_TITLE"' fails for everyone; https://example.com/a/very/long/link/without/any/spaces/at/all/to/wrap/'"$LONG_TITLE"'",
  "components": '"$every"', "eta_in": "2h" }'); then
  long_id=$(field id <<<"$resp")
fi
if resp=$(api POST /api/v1/maintenances 201 '{ "title": "Maintenance'"$LONG_TITLE"'", "components": ["api", "web", "long-name"],
  "starts_at": "'"$window_start"'", "ends_at": "'"$window_end"'",
  "description": "'"$LONG_TITLE"'" }'); then
  window_id=$(field id <<<"$resp")
fi
curl -s --max-time 10 -o /dev/null -X POST "$BASE/api/v1/subscribers" -H "Content-Type: application/json" \
  -d '{ "email": "a-subscriber-with-a-rather-long-address-'"$RANDOM"'@subdomain.example.com" }'
ADMIN_EMAIL="e2e-admin@example.com"
ADMIN_PASSWORD="e2e-admin-password-$RANDOM$RANDOM"
printf '%s\n' "$ADMIN_PASSWORD" | "$BIN" "${CONF[@]}" operator add --email "$ADMIN_EMAIL" --role admin \
  >"$tmp/admin.log" 2>&1 || { cat "$tmp/admin.log"; fail "candor operator add --role admin"; }
if [ -n "$long_id" ] && [ -n "$window_id" ]; then
  pass "seeded: incident #$long_id with a 120-character title on every component, window #$window_id"
  sleep 1  # the page cache refreshes within about a second
  E2E_BASE="$BASE" E2E_OUT="$OUT" E2E_AXE="$AXE_JS" E2E_RESULTS="$tmp/widths-results" \
    E2E_ADMIN_EMAIL="$ADMIN_EMAIL" E2E_ADMIN_PASSWORD="$ADMIN_PASSWORD" E2E_TOKEN="$token" \
    E2E_LONG_ID="$long_id" E2E_WINDOW_ID="$window_id" \
    timeout -k 10 300 node "$E2E_DIR/widths.mjs"
  node_rc=$?
  if [ -f "$tmp/widths-results" ]; then
    read -r bp bf <"$tmp/widths-results"
    passed=$((passed + bp)); failed=$((failed + bf))
    if [ "$node_rc" != 0 ] && [ "$bf" = 0 ]; then fail "widths.mjs exited $node_rc"; fi
  else
    fail "widths.mjs stopped before reporting (exit $node_rc)"
  fi
else
  fail "seeding the widths scenario"
fi

# ---------------------------------------------------------------------------------------------
log "honesty: the promise record, a corrected update, a published postmortem (honesty.mjs)"
# An incident with an estimate, one update, a correction of its first words (the meaning
# changed), resolved; honesty.mjs then writes and publishes its postmortem from the console.
honesty_id=""
if resp=$(api POST /api/v1/incidents 201 '{ "title": "Search results missing", "impact": "minor",
    "message": "Search returns no results for customers in the US region.",
    "components": { "web": "degraded_performance" }, "eta_in": "40m" }'); then
  honesty_id=$(field id <<<"$resp")
  first_update=$(node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).updates[0].id))' <<<"$resp")
  api POST "/api/v1/incidents/$honesty_id/updates" 200 '{ "message": "We found a stuck index rebuild and are rolling it back." }' >/dev/null \
    || fail "honesty: update"
  api POST "/api/v1/incidents/$honesty_id/updates/$first_update/corrections" 201 '{
    "message": "Search returns no results for customers in the EU region.",
    "reason": "we named the wrong region", "meaning_changed": true }' >/dev/null \
    && pass "honesty: POST .../corrections answers 201" || fail "honesty: correction"
  api POST "/api/v1/incidents/$honesty_id/resolve" 200 '{ "message": "Search is back for everyone." }' >/dev/null \
    || fail "honesty: resolve"
  record=$(curl -s --max-time 10 "$BASE/api/v1/record")
  if node -e 'const r=JSON.parse(process.argv[1]); process.exit(r.days===90 && r.estimates.given>0 ? 0 : 1)' "$record"; then
    pass "honesty: GET /api/v1/record answers the 90 days' figures without a token"
  else
    fail "honesty: GET /api/v1/record: $record"
  fi
  E2E_BASE="$BASE" E2E_SHOTS="$SHOTS" E2E_RESULTS="$tmp/honesty-results" E2E_AXE="$AXE_JS" \
    E2E_OPERATOR_EMAIL="$OPERATOR_EMAIL" E2E_OPERATOR_PASSWORD="$OPERATOR_PASSWORD" \
    E2E_HONESTY_ID="$honesty_id" timeout -k 10 180 node "$E2E_DIR/honesty.mjs"
  node_rc=$?
  if [ -f "$tmp/honesty-results" ]; then
    read -r bp bf <"$tmp/honesty-results"
    passed=$((passed + bp)); failed=$((failed + bf))
    if [ "$node_rc" != 0 ] && [ "$bf" = 0 ]; then fail "honesty.mjs exited $node_rc"; fi
    echo "honesty screenshots: $SHOTS/honesty-*.png"
  else
    fail "honesty.mjs stopped before reporting (exit $node_rc)"
  fi
else
  fail "honesty: declare"
fi

# ---------------------------------------------------------------------------------------------
log "roles and sign-in throttling: a responder's and an admin's walk, a parallel flood (roles.mjs)"
E2E_BASE="$BASE" E2E_OUT="$OUT" E2E_AXE="$AXE_JS" E2E_SHOTS="$SHOTS" E2E_RESULTS="$tmp/roles-results" \
  E2E_OPERATOR_EMAIL="$OPERATOR_EMAIL" E2E_OPERATOR_PASSWORD="$OPERATOR_PASSWORD" \
  E2E_ADMIN_EMAIL="$ADMIN_EMAIL" E2E_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  timeout -k 10 300 node "$E2E_DIR/roles.mjs"
node_rc=$?
if [ -f "$tmp/roles-results" ]; then
  read -r bp bf <"$tmp/roles-results"
  passed=$((passed + bp)); failed=$((failed + bf))
  if [ "$node_rc" != 0 ] && [ "$bf" = 0 ]; then fail "roles.mjs exited $node_rc"; fi
else
  fail "roles.mjs stopped before reporting (exit $node_rc)"
fi

# ---------------------------------------------------------------------------------------------
log "inbox: a second Candor listening to a stand-in Mastodon (inbox.mjs)"
E2E_BIN="$BIN" E2E_CONFIG="$tmp/candor.yaml" E2E_TMP="$tmp" E2E_SHOTS="$SHOTS" E2E_AXE="$AXE_JS" E2E_OUT="$OUT" \
  E2E_RESULTS="$tmp/inbox-results" timeout -k 10 180 node "$E2E_DIR/inbox.mjs"
node_rc=$?
if [ -f "$tmp/inbox-results" ]; then
  read -r bp bf <"$tmp/inbox-results"
  passed=$((passed + bp)); failed=$((failed + bf))
  if [ "$node_rc" != 0 ] && [ "$bf" = 0 ]; then fail "inbox.mjs exited $node_rc"; fi
else
  fail "inbox.mjs stopped before reporting (exit $node_rc)"
fi

# ---------------------------------------------------------------------------------------------
log "Nu Html Checker (vnu.jar --errors-only)"

declare -A pages=(
  [status.html]="/"
  [incident.html]="/incidents/$active_id"
  [resolved-incident.html]="/incidents/$resolved_id"
  [history.html]="/history"
  [not-found.html]="/incidents/999999"
  [maintenance.html]="/incidents/${maintenance_id:-999998}"
  [honesty.html]="/incidents/${honesty_id:-999997}"
)
declare -A want_code=([not-found.html]=404)
files=()
for f in status.html incident.html resolved-incident.html history.html not-found.html maintenance.html honesty.html; do
  code=$(curl -s --max-time 10 -o "$OUT/$f" -w '%{http_code}' "$BASE${pages[$f]}") || code=000
  want=${want_code[$f]:-200}
  if [ "$code" = "$want" ]; then
    files+=("$OUT/$f")
  else
    fail "GET ${pages[$f]} answered $code (wanted $want)"
  fi
done
# The console pages console.mjs saved as the server sent them (they need a session).
for f in "$OUT"/console-*.html; do
  [ -f "$f" ] || continue
  name=$(basename "$f")
  pages[$name]="console: ${name#console-}"  # e.g. "console: dashboard.html"
  files+=("$f")
done

if [ ${#files[@]} -gt 0 ]; then
  timeout -k 10 180 java -Xss2m -jar "$VNU_JAR" --errors-only --format json "${files[@]}" \
    2>"$tmp/vnu.json" >/dev/null
  vnu_rc=$?
  if [ "$vnu_rc" -ge 124 ] || ! node -e 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))' "$tmp/vnu.json" 2>/dev/null; then
    cat "$tmp/vnu.json"
    fail "vnu.jar did not produce a report (exit $vnu_rc)"
  else
    cp "$tmp/vnu.json" "$OUT/vnu.json"
    for f in "${files[@]}"; do
      name=$(basename "$f")
      report=$(node -e '
        const [json, file, path] = process.argv.slice(1);
        const msgs = JSON.parse(require("fs").readFileSync(json, "utf8")).messages
          .filter(m => m.type === "error" || m.subType === "fatal" || m.type === "non-document-error")
          .filter(m => !m.url || decodeURIComponent(m.url).endsWith("/" + file));
        for (const m of msgs) {
          const where = m.lastLine ? ` (line ${m.lastLine}${m.firstColumn ? ", col " + m.firstColumn : ""})` : "";
          const ext = m.extract ? `\n        near: ${m.extract.replace(/\s+/g, " ").trim()}` : "";
          console.log(`      - ${path}${where}: ${m.message}${ext}`);
        }' "$tmp/vnu.json" "$name" "${pages[$name]}")
      if [ -z "$report" ]; then
        pass "vnu: ${pages[$name]} has no HTML errors"
      else
        fail "vnu: ${pages[$name]} has HTML errors:"
        echo "$report"
      fi
    done
  fi
fi

# ---------------------------------------------------------------------------------------------
# The server must have stayed up through all of this.
if kill -0 "$server_pid" 2>/dev/null; then
  pass "Candor still running at the end"
else
  fail "Candor exited during the run (see out/candor.stderr.log)"
fi

summary
[ "$failed" = 0 ]
