"""Helpers for the server processes that tests and the conformance runner start.

The one place for: a free localhost port, waiting until a started process is ready,
stopping it (SIGTERM, then SIGKILL) and the tail of its log for error messages.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """A port that was free a moment ago (another process may take it first: retry on "in use")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def http_ok(url: str, *, timeout: float, session: requests.Session | None = None) -> bool:
    """Whether GET ``url`` answers 200 (False on any other status and on connection errors)."""
    try:
        return (session or requests).get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_until_ready(
    proc: subprocess.Popen, ready: Callable[[], bool], *, timeout: float, interval: float
) -> bool:
    """Poll ``ready()`` until it is true (True), or ``proc`` exits or ``timeout`` passes (False).

    After False, ``proc.returncode`` tells which: None if it timed out, else the exit code.
    """
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if ready():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return False


def stop_process(proc: subprocess.Popen | None, grace: float = 10.0, *, name: str | None = None) -> None:
    """SIGTERM, and SIGKILL if still running after ``grace`` seconds; nothing if it has exited.

    With ``name``, a process that needs the SIGKILL is reported on stderr.
    """
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        if name:
            print(f"{name} (pid {proc.pid}) did not stop on SIGTERM; killing it", file=sys.stderr)
        proc.kill()
        proc.wait(10)


def last_lines(text: str | None, n: int) -> str:
    return "\n".join((text or "").strip().splitlines()[-n:])


def file_tail(path: Path, n: int, missing: str = "") -> str:
    """The last ``n`` lines of a log file, or ``missing`` if it cannot be read."""
    try:
        return last_lines(path.read_text(errors="replace"), n)
    except OSError:
        return missing
