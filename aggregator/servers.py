"""Local server processes of a federation on 127.0.0.1: `openeo-backend serve` instances with chosen demo
collections (sharing one generated demo catalog through a symlink) and `openeo-aggregator serve` in front.

Each server is a process group of its own (gunicorn's arbiter, its workers, a backend's job runner), so
it is stopped as a whole: SIGTERM to the group, SIGKILL after a grace period. Used by `openeo-aggregator
demo` and by the tests' federation harness (tests/support/federation.py). Imports nothing of the engine:
the backends run in their own processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import requests
import yaml

LOCALHOST = "127.0.0.1"
API_PATH = "/openeo/1.2"
SETTINGS_PREFIXES = ("OPENEO_BACKEND_", "OPENEO_AGGREGATOR_")


class ServerFailed(RuntimeError):
    """A server exited or did not answer in time; the message ends with the tail of its log."""

    def __init__(self, server: "ServerProcess", reason: str):
        super().__init__(f"{server.name} {reason}; the end of its log ({server.log}):\n{server.tail()}")
        self.server = server


class Interrupted(RuntimeError):
    """Waiting was cut short by a stop request (a signal)."""


def free_port(host: str = LOCALHOST) -> int:
    """A port that was free a moment ago (another process may take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def console_command(name: str, module: str) -> list[str]:
    """The console script beside this interpreter, else ``python -m module`` (an environment whose scripts
    live elsewhere, or an editable install made before the script was declared)."""
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def child_environment(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this environment) without OPENEO_BACKEND_*/OPENEO_AGGREGATOR_* settings, which
    would override the settings chosen for each server (environment beats config file), plus ``extra``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(SETTINGS_PREFIXES)}
    return {**env, **extra}


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen
    port: int
    log: Path
    data_dir: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def root(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def url(self) -> str:
        return self.root + API_PATH

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM to the whole process group (gunicorn's arbiter, its workers, the job runner)."""
        _signal_group(self.process, signal.SIGTERM)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds; returns once the server has exited."""
        self.terminate()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        # SIGKILL the group even when the leader has exited: a worker it left behind goes too
        _signal_group(self.process, signal.SIGKILL)
        self.process.wait(10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # started with a session of its own: group id == pid
    except ProcessLookupError:
        pass


def spawn(name: str, args: list[str], data_dir: Path, port: int, env: Mapping[str, str]) -> ServerProcess:
    """Start ``args`` in a new session (its own process group), output into ``<data_dir>.log``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(a) for a in args], stdout=out, stderr=subprocess.STDOUT, env=dict(env),
                                   cwd=data_dir, stdin=subprocess.DEVNULL, start_new_session=True)
    return ServerProcess(name, process, port, log, data_dir)


def stop_all(servers: Iterable[ServerProcess | None], grace: float = 15.0) -> None:
    """SIGTERM to every group at once (they shut down in parallel), then wait for each (SIGKILL after
    ``grace``)."""
    servers = [s for s in servers if s is not None]
    for server in servers:
        server.terminate()
    deadline = time.monotonic() + grace
    for server in servers:
        server.stop(max(0.0, deadline - time.monotonic()))


def link_catalog(data_dir: Path, catalog: Path) -> None:
    """Make ``<data_dir>/demo-catalog`` the already generated demo catalog ``catalog`` (a symlink): the
    backend finds it current and does not generate its own."""
    data_dir.mkdir(parents=True, exist_ok=True)
    link = data_dir / "demo-catalog"
    if link.is_symlink() and link.resolve() == catalog.resolve():
        return
    if link.is_symlink():
        link.unlink()
    link.symlink_to(catalog.resolve(), target_is_directory=True)


def add_users(database_url: str, data_dir: Path, users: Iterable[tuple[str, str]]) -> None:
    """Add basic-auth users with the backend's own user store (the code of `users add`), migrating the
    database first. A user that exists already must have the same password."""
    users = list(users)
    if not users:
        return
    from backend.storage.schema import open_database_at
    from backend.storage.users import UserExists, UserStore

    db = open_database_at(database_url, data_dir)
    try:
        store = UserStore(db)
        for name, password in users:
            try:
                store.add(name, password)
            except UserExists:
                if store.check_password(name, password) is None:
                    raise ValueError(f"user '{name}' exists in {data_dir} with another password: give that "
                                     "password, or another data directory") from None
    finally:
        db.dispose()


def start_backend(data_dir: Path, backend_id: str, collections: list[str], *, port: int | None = None,
                  catalog: Path | None = None, users: Iterable[tuple[str, str]] = (), job_runner: bool = False,
                  workers: int = 1, env: Mapping[str, str] | None = None, **settings) -> ServerProcess:
    """`openeo-backend serve` serving ``collections`` of the demo catalog, with ``settings`` as
    OPENEO_BACKEND_* variables; ``catalog``: an already generated demo catalog to link in."""
    if catalog is not None:
        link_catalog(data_dir, catalog)
    add_users(f"sqlite:///{data_dir / 'backend.db'}", data_dir, users)
    port = port or free_port()
    variables = {"demo_collections": collections, "backend_id": backend_id, "title": f"Backend {backend_id}",
                 "access_log": False, **settings}
    child_env = child_environment(env, **{f"OPENEO_BACKEND_{k.upper()}": _env_value(v) for k, v in variables.items()})
    args = console_command("openeo-backend", "backend.cli") + [
        "serve", "--host", LOCALHOST, "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers)]
    if not job_runner:
        args.append("--no-job-runner")
    return spawn(f"backend {backend_id}", args, data_dir, port, child_env)


def aggregator_config(path: Path, backends: Mapping[str, str], **settings) -> Path:
    """A YAML config file: ``backends`` (id -> API url) and any other settings."""
    document = {"backends": [{"id": b, "url": url, "title": f"Backend {b}"} for b, url in backends.items()],
                **settings}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def start_aggregator(data_dir: Path, backends: Mapping[str, str], *, port: int | None = None,
                     users: Iterable[tuple[str, str]] = (), workers: int = 1, env: Mapping[str, str] | None = None,
                     **settings) -> ServerProcess:
    """`openeo-aggregator serve` over ``backends`` with ``settings`` in its config file
    (``<data_dir>.yaml``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = aggregator_config(data_dir.parent / f"{data_dir.name}.yaml", backends,
                               **{"access_log": False, **settings})
    add_users(f"sqlite:///{data_dir / 'aggregator.db'}", data_dir, users)
    port = port or free_port()
    args = console_command("openeo-aggregator", "aggregator.cli") + [
        "--config", str(config), "serve", "--host", LOCALHOST, "--port", str(port), "--data-dir", str(data_dir),
        "--workers", str(workers)]
    return spawn("aggregator", args, data_dir, port, child_environment(env))


def wait_ready(servers: Iterable[ServerProcess], timeout: float = 240.0,
               stop: threading.Event | None = None) -> None:
    """Until every server's /health answers (any status: the aggregator's is 503 while its backends are
    down). Raises ServerFailed for a server that exits or does not answer in time, Interrupted when
    ``stop`` is set."""
    deadline = time.monotonic() + timeout
    for server in servers:
        while not _answers(f"{server.root}/health"):
            if server.process.poll() is not None:
                raise ServerFailed(server, f"exited with code {server.process.returncode} while starting")
            if time.monotonic() > deadline:
                raise ServerFailed(server, f"did not answer within {timeout:g} s")
            if stop is not None and stop.wait(0.2):
                raise Interrupted()
            elif stop is None:
                time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


def _env_value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
