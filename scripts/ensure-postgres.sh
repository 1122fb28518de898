#!/usr/bin/env bash
# Make sure PostgreSQL *server* binaries (initdb, pg_ctl, postgres) are present.
#
#   scripts/ensure-postgres.sh        # prints the bin directory on stdout, e.g.
#                                     # /usr/lib/postgresql/15/bin
#
# Idempotent: when the binaries are already there it only prints their directory.
# Otherwise it installs Debian's `postgresql` package with apt-get (as root, or via
# `sudo -n` when not root). Debian's package would normally create and start a
# system cluster ("15/main"); we suppress that during the install (the test suite
# makes its own throw-away clusters, see tests/support/postgres.py), so nothing is
# left running or enabled.
#
# Progress and diagnostics go to stderr; stdout carries only the bin directory.
#
# Environment:
#   PG_BINDIR       use this directory (must contain initdb and pg_ctl); never installs.
#   PG_PACKAGE      package to install (default: postgresql, i.e. 15 on Debian 12).
#   PG_FORCE_APT=1  run the apt-get step even if binaries are found (for testing).
set -euo pipefail

PG_PACKAGE="${PG_PACKAGE:-postgresql}"
LOCK_FILE="${ENSURE_POSTGRES_LOCK:-/tmp/ensure-postgres.lock}"

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }

# Print the first directory that holds both initdb and pg_ctl; newest major first.
find_bindir() {
    local d
    if [[ -n "${PG_BINDIR:-}" ]]; then
        if [[ -x "$PG_BINDIR/initdb" && -x "$PG_BINDIR/pg_ctl" ]]; then
            printf '%s\n' "$PG_BINDIR"
            return 0
        fi
        log "PG_BINDIR=$PG_BINDIR has no initdb/pg_ctl"
        return 1
    fi
    # Debian/Ubuntu layout: /usr/lib/postgresql/<major>/bin (not on PATH).
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -n -r); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    # Anything else on PATH (Homebrew, Fedora, a source build, ...).
    local initdb
    if initdb="$(command -v initdb 2>/dev/null)" && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$initdb")"
        return 0
    fi
    return 1
}

if [[ -n "${PG_BINDIR:-}" ]]; then
    # An explicit choice: use it or fail, never install something else instead.
    bindir="$(find_bindir)" || exit 1
    printf '%s\n' "$bindir"
    exit 0
fi

if [[ "${PG_FORCE_APT:-0}" != 1 ]] && bindir="$(find_bindir)"; then
    log "PostgreSQL binaries already present"
    printf '%s\n' "$bindir"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "no initdb/pg_ctl found and apt-get is not available."
    log "Install the PostgreSQL server yourself and set PG_BINDIR (or put initdb/pg_ctl on PATH)."
    exit 1
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        log "PostgreSQL is missing and installing it needs root (no password-less sudo)."
        log "Run as root: apt-get install postgresql   (or set PG_BINDIR)"
        exit 1
    fi
fi

# Serialise concurrent callers (e.g. several pytest-xdist workers) and re-check
# after getting the lock: another caller may have finished the install meanwhile.
if command -v flock >/dev/null 2>&1 && { : >>"$LOCK_FILE"; } 2>/dev/null; then
    exec 9>>"$LOCK_FILE"
    flock -w 900 9 || { log "timed out waiting for $LOCK_FILE"; exit 1; }
    if [[ "${PG_FORCE_APT:-0}" != 1 ]] && bindir="$(find_bindir)"; then
        log "PostgreSQL binaries installed by a concurrent caller"
        printf '%s\n' "$bindir"
        exit 0
    fi
fi

# During the install only: (1) tell postgresql-common not to create the default
# "main" cluster (see /etc/postgresql-common/createcluster.conf, which includes
# createcluster.d), and (2) forbid invoke-rc.d from starting services (policy-rc.d,
# exit 101 = "action not allowed"). Both are removed again afterwards, unless they
# existed before.
CC_DIR=/etc/postgresql-common/createcluster.d
CC_FILE="$CC_DIR/zz-ensure-postgres-no-main.conf"
POLICY=/usr/sbin/policy-rc.d
created_cc=0
created_policy=0
cleanup() {
    if [[ $created_cc == 1 ]]; then "${SUDO[@]}" rm -f "$CC_FILE"; fi
    if [[ $created_policy == 1 ]]; then "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap cleanup EXIT

if [[ ! -e "$CC_FILE" ]]; then
    "${SUDO[@]}" mkdir -p "$CC_DIR"
    printf '# temporary, written by scripts/ensure-postgres.sh\ncreate_main_cluster = false\n' \
        | "${SUDO[@]}" tee "$CC_FILE" >/dev/null
    created_cc=1
fi
if [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\n# temporary, written by scripts/ensure-postgres.sh\nexit 101\n' \
        | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -y -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300
          -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

start=$SECONDS
log "installing $PG_PACKAGE with apt-get (this takes a while on a fresh machine)"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get "${APT_OPTS[@]}" install --no-install-recommends "$PG_PACKAGE" >&2
log "apt-get finished in $((SECONDS - start)) s"

if ! bindir="$(find_bindir)"; then
    log "installed $PG_PACKAGE but still cannot find initdb/pg_ctl"
    exit 1
fi
log "PostgreSQL binaries in $bindir ($("$bindir/postgres" --version 2>/dev/null || echo '?'))"
printf '%s\n' "$bindir"
