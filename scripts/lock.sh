#!/usr/bin/env bash
# Refreshes constraints.txt (`make lock`): resolves pyproject.toml's requirements afresh, with every extra
# the tests use, in a throw-away venv, and pins each distribution that got installed. Then run `make test`
# and commit constraints.txt with the change that needed it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --upgrade pip setuptools wheel
"$work/venv/bin/pip" install --quiet -e '.[backend,test,postgres,s3]'
{
  echo "# The tested version of every package that \`make\` and CI install (pip install -c constraints.txt ...)."
  echo "# Written by \`make lock\` (scripts/lock.sh) on $("$work/venv/bin/python" --version): do not edit by hand."
  "$work/venv/bin/pip" freeze --exclude-editable
} > "$work/constraints.txt"
mv "$work/constraints.txt" constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages"
