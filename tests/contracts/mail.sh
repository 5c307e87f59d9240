#!/usr/bin/env bash
# The mail Candor sends, checked by SpamAssassin and by Python's `email` package, as a real mail
# server received it (issue: "Contracts with other software"). A release `candor serve` on
# loopback has an email channel pointed at a local aiosmtpd sink (tests/smtp/sink.py) that
# writes each message to a file; the script makes it send every kind of mail: the confirmation
# (through the public subscribe API), an incident's first mail, an update and the resolution,
# a maintenance notice and its cancellation. Then, for each mail:
#   - `spamassassin -t -L` (Debian's package; local tests only, no network): prints the score
#     and the rules hit, and fails at a score of 1.0 or more;
#   - tests/contracts/mail_check.py: RFC 5322's headers, List-Id (RFC 2919), the one-click
#     unsubscribe (RFC 8058), Auto-Submitted (RFC 3834), the text and HTML parts, and the
#     threads (one subject; later mails name the first in In-Reply-To and References).
# Installs what it needs, idempotently (spamassassin from Debian, aiosmtpd from PyPI).
#
#   bash tests/contracts/mail.sh                  # builds the release binary first
#   SKIP_BUILD=1 bash tests/contracts/mail.sh
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

if ! command -v spamassassin >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "FAIL: spamassassin is not installed (apt-get install spamassassin, as root)"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt="apt-get -o DPkg::Lock::Timeout=300 -y -qq"
  timeout 600 $apt install --no-install-recommends spamassassin >/dev/null ||
    { timeout 300 $apt update && timeout 600 $apt install --no-install-recommends spamassassin >/dev/null; } ||
    { echo "FAIL: could not install spamassassin"; exit 1; }
fi
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  timeout 300 python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'aiosmtpd>=1.4,<2' ||
    { echo "FAIL: could not install aiosmtpd"; exit 1; }
fi
echo "SpamAssassin $(spamassassin --version | awk 'NR==1 {print $3}') (Debian $(dpkg-query -W -f='${Version}' spamassassin 2>/dev/null || echo '?'))"

work=$(mktemp -d)
server_pid=
sink_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$sink_pid" ]; then exec 3>&-; kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
smtp_port=$(free_port)
base="http://127.0.0.1:$port"

# The SMTP sink runs until its stdin (fd 3 here) closes.
mkdir -p "$work/mail"
exec 3> >(exec python3 tests/smtp/sink.py "$work/mail" "$smtp_port" >"$work/sink.log" 2>&1)
sink_pid=$!
for _ in $(seq 1 100); do grep -q ready "$work/sink.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/sink.log" || { echo "FAIL: the SMTP sink did not start"; cat "$work/sink.log"; exit 1; }

# The demo config, with the public URL a real site has (mail links are to it; nothing here
# fetches them) and an email channel to the sink.
export DATABASE_URL="sqlite://$work/candor.db"
export CANDOR_EMAIL_SECRET=contract-test-secret-that-is-long-enough-0123
sed -e "s|path: \"-\"|path: \"$work/public.log\"|" \
  -e 's|^  # public_url: "https://status.example.com"$|  public_url: "https://status.example.com"|' \
  -e "s|^channels:$|channels:\n  email:\n    type: email\n    smtp_url: \"smtp://127.0.0.1:$smtp_port\"\n    from: \"Candor Demo Status <status@example.com>\"\n    token_secret: \"\${CANDOR_EMAIL_SECRET}\"\n    limits: { timeout: 10s }|" \
  config/candor.yaml >"$work/candor.yaml"
grep -q 'type: email' "$work/candor.yaml" || { echo "FAIL: could not add the email channel to the config"; exit 1; }
grep -q '^  public_url: "https://status.example.com"$' "$work/candor.yaml" || { echo "FAIL: could not set site.public_url"; exit 1; }
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

# Waits (up to 30 s: the outbox's workers send on their own) until N mails have arrived.
wait_mails() {
  for _ in $(seq 1 300); do
    [ "$(find "$work/mail" -name '*.eml' | wc -l)" -ge "$1" ] && return 0
    sleep 0.1
  done
  echo "FAIL: expected $1 mails, got $(find "$work/mail" -name '*.eml' | wc -l)"; tail -20 "$work/server.log"; exit 1
}
api() { curl -fsS -o "$work/answer.json" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
id_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/answer.json"; }

# The confirmation, asked for on the public API as a visitor would; its link confirms.
curl -fsS -o /dev/null -H 'Content-Type: application/json' \
  -d '{"email":"ann@example.org"}' "$base/api/v1/subscribers" || { echo "FAIL: subscribing"; exit 1; }
wait_mails 1
link=$(python3 tests/contracts/mail_check.py link "$work/mail/000001.eml" "https://status.example.com/subscribe/confirm/") || exit 1
curl -fsS -o /dev/null -X POST "$base${link#https://status.example.com}" || { echo "FAIL: following the confirmation link"; exit 1; }
# An incident: its first mail, an update, the resolution (one at a time, in order).
api -d '{"title":"Checkout errors","message":"Payments fail for some cards. We are looking into it.","components":{"api":"partial_outage"},"eta_in":"2h"}' "$base/api/v1/incidents"
incident=$(id_of)
wait_mails 2
api -d '{"message":"Found it: a certificate expired at the payment gateway. A new one is being installed.","status":"identified"}' "$base/api/v1/incidents/$incident/updates"
wait_mails 3
api -d '{"message":"The new certificate is in place and payments work again. We are sorry for the trouble."}' "$base/api/v1/incidents/$incident/resolve"
wait_mails 4
# A maintenance window: its notice, and its cancellation.
starts=$(date -u -d '+3 days' +%Y-%m-%dT02:00:00Z)
api -d "{\"title\":\"Database upgrade\",\"description\":\"Moving to PostgreSQL 17. Expect a short pause while we switch over.\",\"components\":[\"api\"],\"starts_at\":\"$starts\",\"duration\":\"2h\"}" "$base/api/v1/maintenances"
window=$(id_of)
wait_mails 5
api -d '{"message":"Postponed: we will announce a new date."}' "$base/api/v1/maintenances/$window/cancel"
wait_mails 6

mapfile -t mails < <(find "$work/mail" -name '*.eml' | sort)
kinds=(confirmation "incident: first mail" "incident: update" "incident: resolution" "maintenance notice" "maintenance cancelled")

# SpamAssassin, local tests only (-L), on each mail as it was sent.
for i in "${!mails[@]}"; do
  python3 tests/contracts/mail_check.py strip "${mails[$i]}" >"$work/sent.eml"
  spamassassin -t -L <"$work/sent.eml" >"$work/scored.eml" 2>"$work/sa.log"
  if result=$(python3 tests/contracts/mail_check.py spam "$work/scored.eml"); then
    score=${result%% *}
    rules=${result#* }
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 1.0 else 1)' "$score"; then
      pass "spamassassin: ${kinds[$i]}: score $score < 1.0 (rules: ${rules:-none})"
    else
      fail "spamassassin: ${kinds[$i]}: score $score >= 1.0 (rules: ${rules:-none})"
      sed -n '/^Content analysis details/,/^$/p;/pts rule/,/^$/p' "$work/scored.eml" | head -30
    fi
  else
    fail "spamassassin: ${kinds[$i]}: no score"; tail -5 "$work/sa.log"
  fi
done

# Python's email package: headers and threads.
if python3 tests/contracts/mail_check.py headers "${mails[@]}"; then
  pass "python email: RFC 5322 headers, List-Id, RFC 8058 one-click, Auto-Submitted, text+HTML, one subject per thread with In-Reply-To/References"
else
  fail "python email: headers and threads"
fi

if grep -q '"level":"ERROR"\|panicked' "$work/server.log"; then
  fail "the server logged errors:"
  grep '"level":"ERROR"\|panicked' "$work/server.log" | head -10
fi
printf '\n%s passed, %s failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
