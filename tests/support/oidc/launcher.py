"""Starting the test provider: in a child process (default) or in a thread of this process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..processes import stop_process
from .client import DEFAULT_ACCESS_TOKEN_LIFETIME, DEFAULT_CLIENT_ID, OidcTestServer
from .errors import OidcTestServerError

STARTUP_TIMEOUT = 60.0
# Run by path, not with ``-m tests.support...``: Canaille's wheel installs a top-level
# ``tests`` package that can shadow the project's.
ENTRY_SCRIPT = Path(__file__).resolve().parents[1] / "oidc_server.py"

_in_process_lock = threading.Lock()


@contextlib.contextmanager
def start_oidc_server(
    port: int | None = None,
    *,
    in_process: bool = False,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str | None = None,
    access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
    verbose: bool = False,
    log_path: Path | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[OidcTestServer]:
    """Start a real OIDC provider on ``127.0.0.1`` (free port if ``port`` is None).

    ``in_process=False`` (default) runs it in a child Python process;
    ``in_process=True`` runs it in a daemon thread of this process (at most one at
    a time; it sets ``AUTHLIB_INSECURE_TRANSPORT=1`` in this process's
    environment).  The client secret is random unless given.
    Child process only: its stderr goes to ``log_path`` (default: a temporary file,
    shown if it does not start), and it has ``startup_timeout`` seconds to start.
    """
    options = dict(
        client_id=client_id,
        client_secret=client_secret,
        access_token_lifetime=access_token_lifetime,
        verbose=verbose,
    )
    if in_process:
        starter = _start_in_process(port, **options)
    else:
        starter = _start_subprocess(port, log_path=log_path, startup_timeout=startup_timeout, **options)
    with starter as server:
        yield server


@contextlib.contextmanager
def _start_in_process(port: int | None, **options) -> Iterator[OidcTestServer]:
    if not _in_process_lock.acquire(blocking=False):
        raise OidcTestServerError(
            "an in-process OIDC test server is already running in this process "
            "(Canaille keeps global state); use in_process=False"
        )
    try:
        from .wsgi_server import build_server, start_serving  # imports Canaille: only here

        httpd, info = build_server(port or 0, **options)
        thread = start_serving(httpd)
        try:
            yield info
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(10)
    finally:
        _in_process_lock.release()


@contextlib.contextmanager
def _start_subprocess(
    port: int | None,
    *,
    client_id: str,
    client_secret: str | None,
    access_token_lifetime: int,
    verbose: bool,
    log_path: Path | None,
    startup_timeout: float,
) -> Iterator[OidcTestServer]:
    cmd = [
        sys.executable,
        str(ENTRY_SCRIPT),
        "--port",
        str(port or 0),
        "--client-id",
        client_id,
        "--access-token-lifetime",
        str(access_token_lifetime),
        "--exit-with-parent",
    ]
    if client_secret:
        cmd += ["--client-secret", client_secret]
    if verbose:
        cmd.append("--verbose")
    log: IO[str] = (
        open(log_path, "w+")
        if log_path is not None
        else tempfile.TemporaryFile(mode="w+", prefix="oidc-test-server-")
    )
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=None if verbose else log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = _read_first_line(proc, startup_timeout)
        if not line.strip():
            proc.kill()
            proc.wait(10)
            log.seek(0)
            where = f"; log {log_path}" if log_path is not None else ""
            raise OidcTestServerError(
                f"OIDC test server did not start within {startup_timeout:.0f} s "
                f"(exit code {proc.returncode}){where}:\n{log.read()[-4000:]}"
            )
        yield OidcTestServer.from_dict(json.loads(line))
    finally:
        stop_process(proc)
        proc.stdout.close()
        log.close()


def _read_first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The server's JSON line; "" if none came within ``timeout`` (a thread: readline blocks)."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""
