"""--self-contained: the local OIDC test provider and this repository's backend, on free ports.

Needs a repository checkout: the OIDC provider and the process helpers are in tests/support/.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from conformance.auth import SELF_CONTAINED_PROVIDER
from conformance.errors import RunnerError
from tests.support.oidc_server import OidcTestServer, OidcTestServerError, start_oidc_server
from tests.support.processes import LOCALHOST, file_tail, free_port, http_ok, stop_process, wait_until_ready

REPO_ROOT = Path(__file__).resolve().parents[1]
LOG_TAIL_LINES = 40  # of a server log, in the error when it does not start


@contextlib.contextmanager
def oidc_test_server(workdir: Path, timeout: float) -> Iterator[OidcTestServer]:
    """Start tests/support/oidc_server.py (Canaille) in a child process; yield its handle."""
    stack = contextlib.ExitStack()
    try:
        server = stack.enter_context(
            start_oidc_server(log_path=workdir / "oidc-server.log", startup_timeout=timeout)
        )
    except OidcTestServerError as exc:
        raise RunnerError(str(exc)) from exc
    with stack:
        print(f"[conformance] OIDC test server: {server.issuer} (pid {server.pid}), client {server.client_id}",
              file=sys.stderr)
        yield server


def _backend_command() -> list[str]:
    candidate = Path(sys.executable).parent / "openeo-backend"
    if candidate.is_file():
        return [str(candidate)]
    found = shutil.which("openeo-backend")
    if found:
        return [found]
    return [sys.executable, "-m", "backend.cli"]


def oidc_provider(oidc: OidcTestServer, advertise_client_credentials: bool) -> dict:
    # the test provider's access tokens name its one client as audience
    provider = {"id": SELF_CONTAINED_PROVIDER, "issuer": oidc.issuer, "title": "Test IdP", "scopes": ["openid"],
                "audience": oidc.client_id}
    if advertise_client_credentials:
        # openEO API 1.2 has no "client_credentials" among a default client's grant_types, and the
        # client-credentials flow of the Python client needs no default client: off by default.
        provider["default_clients"] = [{"id": oidc.client_id, "grant_types": ["client_credentials"]}]
    return provider


@contextlib.contextmanager
def local_backend(workdir: Path, oidc: OidcTestServer, extra_env: dict[str, str], timeout: float,
                  advertise_client_credentials: bool = False) -> Iterator[str]:
    """Start our backend (`openeo-backend serve`) on a free port; yield its root URL."""
    port = free_port()
    data_dir = workdir / "data"
    data_dir.mkdir()
    providers = [oidc_provider(oidc, advertise_client_credentials)]
    # `serve` starts the job runner (WP4's job tests and WP6's batch job need it) unless --backend-env says no
    env = {**os.environ, "OPENEO_BACKEND_OIDC_PROVIDERS": json.dumps(providers), "OPENEO_BACKEND_JOB_RUNNER": "true",
           **extra_env}
    cmd = _backend_command() + ["serve", "--host", LOCALHOST, "--port", str(port), "--data-dir", str(data_dir)]
    log_path = workdir / "backend.log"
    print(f"[conformance] starting backend: {shlex.join(cmd)}", file=sys.stderr)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env)
    root = f"http://{LOCALHOST}:{port}"
    try:
        up = wait_until_ready(proc, lambda: http_ok(root + "/.well-known/openeo", timeout=5),
                              timeout=timeout, interval=0.5)
        if not up:
            problem = (f"backend not up after {timeout:.0f}s" if proc.returncode is None
                       else f"backend exited during start-up (exit code {proc.returncode})")
            tail = file_tail(log_path, LOG_TAIL_LINES, missing="(no log)")
            raise RunnerError(f"{problem}; log {log_path}:\n{tail}")
        print(f"[conformance] backend: {root} (pid {proc.pid}), data dir {data_dir}", file=sys.stderr)
        yield root
    finally:
        stop_process(proc, 20, name="[conformance] backend")
