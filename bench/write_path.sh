#!/usr/bin/env bash
# The write path against its ceiling: Candor's declares/s vs a bare SQLite loop running a
# transaction of the same shape, alternated in pairs (see bench/write_path.py).
#
#   bash bench/write_path.sh
#
# Settings (environment): WRITE_CLIENTS (8), WRITE_SECS (10), WRITE_PAIRS (3), SKIP_BUILD=1.
# Installs wrk if missing. Last line: the median ratio Candor / bare loop.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
if ! command -v wrk >/dev/null; then
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq wrk >/dev/null
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  timeout 600 cargo build --release --quiet --bin candor
fi
exec timeout 900 python3 bench/write_path.py "$repo/target/release/candor"
