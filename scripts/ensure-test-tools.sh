#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages: PostgreSQL (Debian) and the JS client (npm).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
if [ -f tests/js/package.json ] && [ ! -d tests/js/node_modules/@openeo/js-client ]; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi
# The anchors venv for the interoperability tests (~45 s the first time, 0.1 s after); without it they skip.
bash scripts/ensure-anchors.sh >/dev/null || echo "ensure-test-tools: anchors not installed; tests/aggregator/interop will skip" >&2
