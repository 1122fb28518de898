"""Stopping a throw-away cluster whatever happens to the process that started it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from .commands import child_env


def start_watchdog(tmp: Path, data_dir: Path, stop_cmd: list[str]) -> subprocess.Popen:
    """A detached helper that stops the server and deletes ``tmp`` once our end of its
    stdin pipe is closed -- which the kernel also does when this process dies."""
    script = (
        'cat >/dev/null 2>&1\n'  # returns on EOF: we are done or dead
        'tmp=$1; data=$2; shift 2\n'
        'if [ -f "$data/postmaster.pid" ]; then "$@" >/dev/null 2>&1; fi\n'
        'rm -rf "$tmp"\n'
    )
    return subprocess.Popen(
        ["sh", "-c", script, "pg-watchdog", str(tmp), str(data_dir), *stop_cmd],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd="/", env=child_env(), start_new_session=True,  # survive Ctrl-C to our group
    )


def dismiss_watchdog(watchdog: subprocess.Popen) -> None:
    """Tell the watchdog we are done; the directory is gone by then, so it just exits."""
    watchdog.stdin.close()
    try:
        watchdog.wait(timeout=10)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()


def kill_postmaster(data_dir: Path) -> None:
    """Last resort: SIGKILL the postmaster of *this* data directory (pid from postmaster.pid)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    # Its backends exit on their own once the postmaster is gone; give them a moment.
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)
