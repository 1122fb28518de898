#!/usr/bin/env bash
# Installs the "anchors" -- openeo-driver (its dummy backend) and VITO's openeo-aggregator -- into their own
# venv, .venv-anchors, at the versions pinned in tests/anchors/constraints.txt. The interoperability tests
# and bench_federation.py run them from there. They cannot share the project's .venv: they pin Flask 2,
# gunicorn 20, pystac 1.8 and (through those) openeo 0.52 and xarray < 2025.01.2 (tests/anchors/README.md).
#
#   scripts/ensure-anchors.sh           # install if missing or stale; prints the venv's bin directory
#   scripts/ensure-anchors.sh --lock    # resolve tests/anchors/requirements.txt afresh, rewrite the pins
#
# Idempotent: a stamp in the venv records the hash of the requirements, the pins and the Python version;
# when it matches, nothing is done (~10 ms). Progress goes to stderr, stdout carries only the bin directory.
#
# Environment:
#   PYTHON                 interpreter to build the venv with (default python3, as the Makefile)
#   OPENEO_ANCHORS_VENV    where the venv lives (default <repo>/.venv-anchors; the tests read it too)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${OPENEO_ANCHORS_VENV:-$PWD/.venv-anchors}"
REQUIREMENTS=tests/anchors/requirements.txt
CONSTRAINTS=tests/anchors/constraints.txt

log() { printf 'ensure-anchors: %s\n' "$*" >&2; }

if [[ "${1:-}" == "--lock" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$PYTHON" -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet --upgrade pip
    "$work/venv/bin/pip" install --quiet -r "$REQUIREMENTS"
    {
        echo "# Every package of .venv-anchors at its tested version (pip install -c tests/anchors/constraints.txt ...)."
        echo "# Written with \`scripts/ensure-anchors.sh --lock\` on $("$work/venv/bin/python" --version): do not edit by hand."
        "$work/venv/bin/pip" freeze
    } > "$work/constraints.txt"
    mv "$work/constraints.txt" "$CONSTRAINTS"
    log "$CONSTRAINTS: $(grep -vc '^#' "$CONSTRAINTS") packages; run scripts/ensure-anchors.sh to install them"
    exit 0
fi

stamp_value() {
    { cat "$REQUIREMENTS" "$CONSTRAINTS"; "$PYTHON" --version; } | sha256sum | cut -d' ' -f1
}

# One installer at a time (parallel test runs, CI): the others wait and then find the stamp.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

want=$(stamp_value)
if [[ -x "$VENV/bin/python" && -f "$VENV/.installed" && "$(cat "$VENV/.installed")" == "$want" ]]; then
    echo "$VENV/bin"
    exit 0
fi

log "installing openeo-driver and openeo-aggregator into $VENV (pinned in $CONSTRAINTS)"
start=$(date +%s)
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# (this machine's pip config names local indexes that lack most packages: pip warns once per package)
if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check -c "$CONSTRAINTS" -r "$REQUIREMENTS" 2>&1 \
        | { grep -v "^WARNING: Location 'file:" || true; } >&2; then
    rm -rf "$VENV"  # no half-installed venv that a later run would take for a stale one
    log "pip failed; nothing installed"
    exit 1
fi
echo "$want" > "$VENV/.installed"
log "done in $(( $(date +%s) - start )) s, $(du -sh "$VENV" | cut -f1)"
echo "$VENV/bin"
