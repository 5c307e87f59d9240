#!/usr/bin/env bash
# Mirrors: change -> visible on a directory mirror and on a local S3-compatible server (moto),
# beside change -> live page in the same loop, and the publish cost with 10 and 10,000 past
# incidents (see the docstring of bench/mirror.py).
#
#   bash bench/mirror.sh
#
# Settings (environment): MIRROR_SIZES ("10,10000"), MIRROR_CHANGES (50), SKIP_BUILD=1 (reuse
# target/release/candor). Needs python3 with moto[server] (and its boto3). Last line: CPU per
# change, largest history / smallest.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
if ! python3 -c 'import moto.server, boto3' 2>/dev/null; then
  timeout 300 python3 -m pip install -q 'moto[server]==5.2.1'
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  timeout 600 cargo build --release --quiet --bin candor
fi
exec timeout 1200 python3 bench/mirror.py "$repo/target/release/candor"
