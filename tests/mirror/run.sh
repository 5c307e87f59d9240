#!/usr/bin/env bash
# The static mirror served as users serve it (see tests/mirror/check.py): Candor publishes to a
# directory, nginx serves it with dist/nginx-mirror.conf, every document is compared with the
# live one, and Chromium looks at the staleness banner of a mirror whose Candor has stopped.
#
#   bash tests/mirror/run.sh            # builds the release binary first
#   SKIP_BUILD=1 bash tests/mirror/run.sh
#
# Installs what it needs, idempotently: nginx and chromium (apt), playwright-core (npm ci in
# tests/e2e). Ends with `N passed, M failed`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
dpkg -s chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -f tests/e2e/node_modules/playwright-core/package.json ]; then
  (cd tests/e2e && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --quiet
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/candor"
exec python3 tests/mirror/check.py "$BIN"
