#!/usr/bin/env bash
# npm start: fetch what is missing, build, then serve the demo PWA.
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY_NO_BROWSER=1 FERRY_NO_POSTGRES=1 bash scripts/deps.sh || { echo "npm start: FAILED fetching dependencies (see above)" >&2; exit 1; }
FERRY_SANITIZE=0 bash scripts/build.sh >/dev/null || { echo "npm start: FAILED building (run: bash scripts/build.sh)" >&2; exit 1; }
exec node server/cli.js
