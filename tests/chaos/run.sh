#!/usr/bin/env bash
# Candor's chaos run: three instances on one PostgreSQL, SIGKILLed 50 times under load; a webhook
# answering 503/429 for a minute; PostgreSQL stopped for 30 s under load. Counts what was lost,
# done twice, or answered 5xx, and ends with `N passed, M failed` (non-zero exit on any failure).
#
#   bash tests/chaos/run.sh
#
# Needs root (to install PostgreSQL if missing and to create, stop and start a throwaway cluster
# with pg_ctlcluster), or, without root, a running PostgreSQL on 127.0.0.1:5432 where the role
# candor_ci (password candor_ci) may create databases; the DB DOWN scenario is then skipped.
# Builds target/release/candor first (not counted in the time bound). The chaos itself is
# bounded to 14.5 minutes and talks to 127.0.0.1 only. Logs land in tests/chaos/out/.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '\n==> %s\n' "$*"; }
export CARGO_TERM_COLOR=never

if [ "$(id -u)" = 0 ]; then
  missing=()
  for p in postgresql postgresql-client; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  for p in python3.13 python3.12 python3.11; do
    if command -v "$p" >/dev/null 2>&1; then python=$p; break; fi
  done
fi

log "cargo build --release"
cargo build --release

log "chaos run (bounded: 14.5 minutes)"
exec timeout --kill-after=30 870 "$python" tests/chaos/chaos.py "$@"
