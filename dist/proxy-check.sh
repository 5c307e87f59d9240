#!/usr/bin/env bash
# Candor behind nginx, as docs/PRODUCTION.md sets it up, on loopback: nginx terminates TLS (a
# self-signed certificate made here with openssl) with the server blocks of
# dist/nginx-candor.conf (only the ports, addresses and certificate paths changed), Candor has
# `server.trusted_proxies: ["127.0.0.1/32"]`. Through nginx it checks: HTTP redirects to HTTPS,
# the status page, /metrics hidden, the API (an incident declared with a token), the console's
# sign-in, and that failed sign-ins from one client (127.0.0.2) do not stop another operator's
# sign-in from another client (127.0.0.3). Installs nginx and openssl (apt) if missing.
#
#   bash dist/proxy-check.sh         # SKIP_BUILD=1 uses the debug binary as it is
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '\n--> %s\n' "$*"; }
passed=0
pass() { passed=$((passed + 1)); echo "PASS  $*"; }
fail() {
  echo "FAIL  $*" >&2
  if [ -n "${tmp:-}" ]; then
    echo "--- Candor's log ---" >&2; tail -n 20 "$tmp/candor.log" >&2 || true
    echo "--- nginx's error log ---" >&2; tail -n 20 "$tmp/error.log" >&2 || true
  fi
  exit 1
}

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing ${missing[*]} and not root to install them"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq
  timeout 600 apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${SKIP_BUILD:-}" ]; then
  log "cargo build"
  timeout 1200 cargo build --quiet
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/candor"
[ -x "$BIN" ] || fail "no binary at $BIN (run cargo build)"

tmp=$(mktemp -d)
candor_pid=""
nginx_pid=""
cleanup() {
  for pid in "$nginx_pid" "$candor_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
candor_port=$(free_port)
https_port=$(free_port)
http_port=$(free_port)
base="https://127.0.0.1:$https_port"

log "candor init, trusted_proxies, a second operator"
admin_pw="correct horse battery staple"
other_pw="another horse battery staple"
printf '%s\n' "$admin_pw" >"$tmp/admin.pw"
init_out=$("$BIN" init --dir "$tmp/site" --site-name "Proxy Check" --public-url "$base" \
  --listen "127.0.0.1:$candor_port" --admin-email admin@proxy.test \
  --admin-password-file "$tmp/admin.pw" </dev/null) || fail "candor init"
token=$(printf '%s\n' "$init_out" | grep '^candor_' | head -1)
[ -n "$token" ] || fail "candor init printed no token"
conf="$tmp/site/candor.yaml"
sed -i 's|^  trusted_proxies: \[\]$|  trusted_proxies: ["127.0.0.1/32"]|' "$conf"
grep -q 'trusted_proxies: \["127.0.0.1/32"\]' "$conf" || fail "setting server.trusted_proxies"
printf '%s\n' "$other_pw" | "$BIN" --config "$conf" operator add --email other@proxy.test \
  --role responder >/dev/null || fail "candor operator add"

log "candor serve on 127.0.0.1:$candor_port"
"$BIN" --config "$conf" serve >"$tmp/candor.log" 2>&1 &
candor_pid=$!

log "nginx on 127.0.0.1:$https_port (TLS) and :$http_port, from dist/nginx-candor.conf"
timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null \
  || fail "openssl req"
sed -e "s|server 127.0.0.1:8080;|server 127.0.0.1:$candor_port;|" \
  -e "s|^    listen 80;|    listen 127.0.0.1:$http_port;|" \
  -e "s|^    listen 443 ssl http2;|    listen 127.0.0.1:$https_port ssl http2;|" \
  -e '/^    listen \[::\]/d' \
  -e "s|/etc/letsencrypt/live/status.example.com/fullchain.pem|$tmp/cert.pem|" \
  -e "s|/etc/letsencrypt/live/status.example.com/privkey.pem|$tmp/key.pem|" \
  -e "s|server_name status.example.com;|server_name 127.0.0.1;|" \
  dist/nginx-candor.conf >"$tmp/candor-site.conf"
for want in "127.0.0.1:$candor_port" "127.0.0.1:$https_port ssl" "127.0.0.1:$http_port" "$tmp/cert.pem"; do
  grep -qF "$want" "$tmp/candor-site.conf" || fail "dist/nginx-candor.conf changed shape: no '$want' after rewriting"
done
cat >"$tmp/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 256; }
http {
  access_log $tmp/access.log;
  client_body_temp_path $tmp/client_body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  include $tmp/candor-site.conf;
}
EOF
"$NGINX" -t -q -p "$tmp" -c "$tmp/nginx.conf" 2>"$tmp/nginx-t.log" || { cat "$tmp/nginx-t.log"; fail "nginx -t"; }
"$NGINX" -p "$tmp" -c "$tmp/nginx.conf" &
nginx_pid=$!

c() { curl -sS -k --max-time 10 "$@"; }
ready=false
for _ in $(seq 1 120); do
  if [ "$(c -o /dev/null -w '%{http_code}' "$base/readyz" 2>/dev/null)" = 200 ]; then ready=true; break; fi
  kill -0 "$candor_pid" 2>/dev/null || fail "candor serve exited"
  sleep 0.5
done
[ "$ready" = true ] || fail "/readyz did not answer through nginx within 60 s"
pass "/readyz through nginx"

log "checks through nginx"
code=$(c -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$http_port/history")
[ "${code%% *}" = 301 ] && [[ "${code#* }" == https://* ]] || fail "HTTP did not redirect to HTTPS ($code)"
pass "HTTP redirects to HTTPS"

page=$(c "$base/")
grep -q "Proxy Check" <<<"$page" || fail "the status page through nginx"
hsts=$(c -D - -o /dev/null "$base/" | tr -d '\r' | grep -i '^strict-transport-security:' || true)
[ -n "$hsts" ] || fail "no HSTS on the https page (site.public_url is https)"
pass "the status page, with HSTS"

[ "$(c -o /dev/null -w '%{http_code}' "$base/metrics")" = 404 ] || fail "/metrics is reachable through nginx"
pass "/metrics is not served through nginx"

created=$(c -o "$tmp/incident.json" -w '%{http_code}' -X POST "$base/api/v1/incidents" \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"title": "Proxy check", "impact": "minor", "status": "investigating",
       "message": "Checking Candor behind nginx.", "components": {"api": "degraded_performance"},
       "eta_in": "30m"}')
[ "$created" = 201 ] || { cat "$tmp/incident.json"; fail "declaring an incident through nginx answered $created"; }
grep -q '"id"' "$tmp/incident.json" || fail "the incident's answer has no id"
pass "the API declares an incident with the token"

# sign_in FROM EMAIL PASSWORD: the HTTP status of POST /admin/login from client address FROM,
# with the CSRF token of a fresh login form.
sign_in() {
  local from=$1 email=$2 password=$3 jar
  jar=$(mktemp -p "$tmp")
  local form csrf
  form=$(c --interface "$from" -c "$jar" -b "$jar" "$base/admin/login")
  csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' <<<"$form" | head -1)
  [ -n "$csrf" ] || fail "no CSRF field in the login form"
  c --interface "$from" -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' \
    --data-urlencode "email=$email" --data-urlencode "password=$password" \
    --data-urlencode "csrf=$csrf" "$base/admin/login"
}

[ "$(sign_in 127.0.0.1 admin@proxy.test "$admin_pw")" = 303 ] || fail "the admin's sign-in through nginx"
pass "the admin signs in to the console through nginx"

codes=""
for i in $(seq 1 10); do
  code=$(sign_in 127.0.0.2 admin@proxy.test "wrong password $i")
  case "$code" in 401|429) codes="$codes $code" ;; *) fail "a wrong password answered $code" ;; esac
done
# The account from this one client has 5 free attempts (then 429 with Retry-After).
case "$codes" in *429*) ;; *) fail "10 wrong sign-ins from 127.0.0.2 were never slowed down:$codes" ;; esac
pass "10 wrong sign-ins from 127.0.0.2 are refused, then slowed down (429)"
[ "$(sign_in 127.0.0.3 other@proxy.test "$other_pw")" = 303 ] \
  || fail "after 10 wrong sign-ins from 127.0.0.2, another operator could not sign in from 127.0.0.3 (is the client address read from X-Forwarded-For?)"
pass "another operator signs in from 127.0.0.3 meanwhile"

echo
echo "proxy-check: $passed passed (nginx with TLS, self-signed certificate)"
