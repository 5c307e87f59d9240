#!/usr/bin/env bash
# Clients generated from Candor's own OpenAPI document, run against a live server:
#   - openapi-python-client generates a Python package; clients/flow.py uses only its functions
#     and models;
#   - openapi-typescript generates types for openapi-fetch; clients/flow.ts is type-checked with
#     `tsc --strict` (no casts) and run with node.
# Each runs the incident script's flow: declare -> update with If-Match -> 409 on a stale version
# -> resolve. Versions are pinned (clients/package.json and its lock file; PyPI below).
#
#   bash tests/contracts/clients.sh BASE_URL TOKEN     (tests/contracts/run.sh calls it)
#
# Exits non-zero if either client fails.
set -euo pipefail
cd "$(dirname "$0")/clients"
base=$1
token=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

curl -fsS "$base/api/v1/openapi.json" -o "$work/openapi.json"

echo "== Python: openapi-python-client"
timeout 300 python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  'openapi-python-client==0.29.1'
timeout 120 python3 -m openapi_python_client generate --path "$work/openapi.json" \
  --output-path "$work/py" --meta none >"$work/generate.log" 2>&1 || { cat "$work/generate.log"; exit 1; }
# The generator names every operation it could not turn into a function; there must be none.
if grep -qi 'warning\|skipp\|unable' "$work/generate.log"; then
  cat "$work/generate.log"
  echo "openapi-python-client skipped part of the document"
  exit 1
fi
mkdir -p "$work/pypath"
mv "$work/py" "$work/pypath/candor_api_client"
# The package needs httpx and attrs; the generator brought both as its own dependencies.
PYTHONPATH="$work/pypath" timeout 60 python3 flow.py "$base" "$token"

echo "== TypeScript: openapi-typescript + openapi-fetch, tsc --strict"
timeout 300 npm ci --no-audit --no-fund --silent
# Optional properties with a default stay optional in requests: the document lists them outside
# `required`, which is what OpenAPI means; openapi-typescript's default would make them required.
timeout 120 npx --no-install openapi-typescript "$work/openapi.json" --default-non-nullable false \
  -o schema.d.ts
timeout 120 npx --no-install tsc -p tsconfig.json
timeout 60 node out/flow.js "$base" "$token"
