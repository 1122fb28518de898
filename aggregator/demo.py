"""`openeo-aggregator demo`: a whole federation on this machine with one command.

Two `openeo-backend serve` instances, each with its job runner, on free ports of 127.0.0.1 (their
federation urls): A serves the Sentinel-2 and DEM demo collections, B the Sentinel-1 and DEM ones, so DEM
is offered by both. One demo catalog, generated once, is linked into both data dirs. The aggregator
fronts them on the given port; the same basic-auth user exists everywhere. Everything stops (process
groups: SIGTERM, SIGKILL after a grace period) on SIGINT (Ctrl-C) or SIGTERM, and when any server dies,
which is an error (exit code 1, with the end of its log).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from aggregator.servers import (
    Interrupted,
    ServerFailed,
    ServerProcess,
    child_environment,
    port_is_free,
    start_aggregator,
    start_backend,
    stop_all,
    wait_ready,
)
from backend.demo.spec import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION

DEFAULT_PORT = 8090
DEFAULT_USER = "demo"
DEFAULT_PASSWORD = "demo"
BACKENDS = {"A": [DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION], "B": [DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION]}
START_TIMEOUT = 300.0  # a first start on a slow machine: catalog, migrations, warm-up of each backend
WATCH_INTERVAL = 0.5


@dataclass
class DemoOptions:
    port: int = DEFAULT_PORT
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    data_dir: Path | None = None  # None: a temporary directory, removed at the end


class DemoFailed(RuntimeError):
    """The demo could not start or a server died; the message says which and why."""


def run_demo(options: DemoOptions, say: Callable[[str], None] = print) -> int:
    """Start the federation, wait for a stop signal or a dead server, stop everything. Returns the exit
    code: 0 after a signal; raises DemoFailed when a server failed."""
    if not port_is_free(options.port):
        raise DemoFailed(f"port {options.port} is in use: choose another with --port")
    stop = threading.Event()
    with _stop_on_signals(stop), _data_dir(options.data_dir) as data_dir:
        servers: list[ServerProcess] = []
        try:
            say(f"starting the federation demo in {data_dir} ...")
            catalog = _demo_catalog(data_dir, stop)
            users = [(options.user, options.password)]
            backends = {}
            for backend_id, collections in BACKENDS.items():
                backends[backend_id] = start_backend(data_dir / backend_id, backend_id, collections,
                                                     catalog=catalog, users=users, job_runner=True)
                servers.append(backends[backend_id])
            wait_ready(servers, timeout=START_TIMEOUT, stop=stop)
            aggregator = start_aggregator(data_dir / "aggregator", {b: s.url for b, s in backends.items()},
                                          port=options.port, users=users, title="openEO federation demo",
                                          access_log=True)
            servers.append(aggregator)
            wait_ready([aggregator], timeout=START_TIMEOUT, stop=stop)
            say(_banner(options, aggregator, backends, data_dir))
            dead = _watch(servers, stop)
        except Interrupted:
            dead = None
        except ServerFailed as failure:
            raise DemoFailed(str(failure)) from None
        except ValueError as exc:  # a user with another password in a given data dir
            raise DemoFailed(str(exc)) from None
        finally:
            say("stopping the federation demo ...")
            stop_all(servers)
        if dead is not None:
            raise DemoFailed(f"{dead.name} (pid {dead.pid}) exited with code {dead.process.returncode}; "
                             f"the end of its log ({dead.log}):\n{dead.tail()}")
        say("stopped")
        return 0


def _watch(servers: list[ServerProcess], stop: threading.Event) -> ServerProcess | None:
    """Until ``stop`` is set (None) or a server exits (that server)."""
    while not stop.wait(WATCH_INTERVAL):
        for server in servers:
            if not server.alive():
                return server
    return None


def _demo_catalog(data_dir: Path, stop: threading.Event) -> Path:
    """Generate the demo catalog once, in a process of its own (the generator loads the engine, which this
    long-lived process does not need); a current catalog is found in a fraction of a second."""
    dest = data_dir / "demo-catalog"
    log = data_dir / "demo-catalog.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "backend.demo", str(dest)], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_environment(),
                                   start_new_session=True)
    try:
        while process.poll() is None:
            if stop.wait(0.2):
                raise Interrupted()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-30:])
        raise DemoFailed(f"generating the demo catalog failed (exit {process.returncode}):\n{tail}")
    return dest


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (the servers, in sessions of their own, do not get a terminal's
    Ctrl-C: this process stops them)."""
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    temporary = Path(tempfile.mkdtemp(prefix="openeo-federation-demo-"))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _banner(options: DemoOptions, aggregator: ServerProcess, backends: dict[str, ServerProcess],
            data_dir: Path) -> str:
    lines = [
        "",
        "openEO federation demo ready",
        f"  URL:       {aggregator.url}/",
        f"  user:      {options.user}",
        f"  password:  {options.password}",
        f"  aggregator {aggregator.url}/ (pid {aggregator.pid}, log {aggregator.log})",
    ]
    for backend_id, server in backends.items():
        collections = ", ".join(BACKENDS[backend_id])
        lines.append(f"  {server.name:<10} {server.url}/ [{collections}] (pid {server.pid}, log {server.log})")
    lines += [
        f"  data:      {data_dir}" + ("" if options.data_dir else " (removed at the end)"),
        "",
        "Try it:",
        f"  python -c \"import openeo; con = openeo.connect('{aggregator.root}')"
        f".authenticate_basic('{options.user}', '{options.password}'); print(con.list_collection_ids())\"",
        "",
        "Ctrl-C (or SIGTERM) stops everything.",
    ]
    return "\n".join(lines)
