"""Finding PostgreSQL's server binaries, and installing them if there are none.

Looked for in $PG_BINDIR, /usr/lib/postgresql/<major>/bin (newest first) and on PATH;
if none is found, scripts/ensure-postgres.sh installs Debian's ``postgresql`` package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..processes import last_lines
from .commands import PostgresUnavailable

REPO_ROOT = Path(__file__).resolve().parents[3]
ENSURE_SCRIPT = REPO_ROOT / "scripts" / "ensure-postgres.sh"


def find_postgres_bindir() -> Path | None:
    """Directory with initdb and pg_ctl: $PG_BINDIR, Debian's layout, then PATH."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        d = Path(explicit)
        return d if _has_server_binaries(d) else None
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    for d in candidates:
        if _has_server_binaries(d):
            return d
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    return None


def ensure_postgres_bindir() -> Path:
    """Find the server binaries, installing them with scripts/ensure-postgres.sh if needed."""
    found = find_postgres_bindir()
    if found:
        return found
    if not ENSURE_SCRIPT.exists():
        raise PostgresUnavailable(f"no initdb/pg_ctl found and {ENSURE_SCRIPT} is missing")
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ENSURE_SCRIPT)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise PostgresUnavailable(
            f"{ENSURE_SCRIPT.name} failed (exit {proc.returncode}) after {elapsed:.0f} s:\n"
            + last_lines(proc.stderr, 30)
        )
    lines = proc.stdout.strip().splitlines()
    bindir = Path(lines[-1]) if lines else None
    if bindir is None or not _has_server_binaries(bindir):
        bindir = find_postgres_bindir()
    if bindir is None:
        raise PostgresUnavailable(f"{ENSURE_SCRIPT.name} ran but initdb/pg_ctl are still missing")
    print(f"[postgres] installed PostgreSQL in {elapsed:.1f} s ({bindir})", file=sys.stderr)
    return bindir


def _has_server_binaries(d: Path) -> bool:
    return all(os.access(d / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name)) or (-1,)
