#!/usr/bin/env bash
# Page rebuilds with 10 and 10,000 past incidents in the 90-day window, side by side in one run:
# start-up, idle CPU per minute, RSS, the size of `/`, and change -> page p50/p99 (see the
# docstring of bench/pages.py for exactly what is measured).
#
#   bash bench/pages.sh
#
# Settings (environment): PAGES_SIZES ("10,10000"), PAGES_IDLE_SECS (60), PAGES_CHANGES (50),
# SKIP_BUILD=1 (reuse target/release/candor). Last line: idle CPU per minute, largest / smallest.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  timeout 600 cargo build --release --quiet --bin candor
fi
exec timeout 1200 python3 bench/pages.py "$repo/target/release/candor"
