#!/usr/bin/env bash
# Change -> page across two instances on PostgreSQL (LISTEN/NOTIFY, polling as the fallback),
# beside change -> page on the instance that took the write (see bench/freshness.py).
#
#   bash bench/freshness.sh
#
# Settings (environment): FRESH_DATABASE_URL (postgres://candor_ci:candor_ci@127.0.0.1:5432/postgres:
# a server where the script may create and drop a database), FRESH_CHANGES (50), SKIP_BUILD=1
# (reuse target/release/candor). Needs a running PostgreSQL server and `psql` (the CI script
# sets both up). Last line: the cross-instance p99, the same-instance p99 and their ratio.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
url=${FRESH_DATABASE_URL:-postgres://candor_ci:candor_ci@127.0.0.1:5432/postgres}
command -v psql >/dev/null || { echo "[freshness] error: psql not found (apt-get install postgresql-client)" >&2; exit 1; }
psql "$url" -qtAc 'SELECT 1' >/dev/null ||
  { echo "[freshness] error: cannot connect to PostgreSQL at FRESH_DATABASE_URL" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  timeout 600 cargo build --release --quiet --bin candor
fi
exec timeout 600 python3 bench/freshness.py "$repo/target/release/candor" "$url"
