"""Running PostgreSQL's programs (initdb, pg_ctl): as the ``postgres`` OS user when we are root.

PostgreSQL refuses to run as root, so as root they run via ``runuser`` (or ``setpriv``)
as the ``postgres`` user that Debian's package creates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..processes import last_lines

OS_USER = "postgres"  # OS account that runs the server when we are root


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries cannot be found or installed, or the server did not start."""


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def run_as_prefix() -> list[str]:
    """Command prefix that runs a program as OS_USER (for root)."""
    import pwd

    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, but there is no '{OS_USER}' OS user to run PostgreSQL as "
            "(Debian's postgresql package creates it)"
        ) from None
    if shutil.which("runuser"):
        return ["runuser", "-u", OS_USER, "--"]
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={OS_USER}", f"--regid={primary_group(OS_USER)}", "--init-groups", "--"]
    raise PostgresUnavailable("running as root, but neither runuser nor setpriv is available")


def primary_group(user: str) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def child_env() -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, PGHOST, ...) would redirect initdb/pg_ctl.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    return env


def run(cmd: list[str], *, cwd: Path, what: str, timeout: float = 120) -> None:
    """Run ``cmd``; PostgresUnavailable (with its output) if it fails or times out."""
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresUnavailable(f"{what} timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise PostgresUnavailable(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"{last_lines(proc.stdout, 20)}\n{last_lines(proc.stderr, 20)}"
        )
