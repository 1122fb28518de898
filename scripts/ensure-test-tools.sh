#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages: PostgreSQL (Debian) and the JS client (npm).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
if [ -f tests/js/package.json ] && [ ! -d tests/js/node_modules/@openeo/js-client ]; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi
