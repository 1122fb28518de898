"""A real federation for tests: `openeo-backend serve` processes with chosen demo collections (sharing one
generated demo catalog through a symlink) and `openeo-aggregator serve` in front, each a process group of
its own on 127.0.0.1, stopped with SIGTERM (SIGKILL after a grace period).

    a = start_backend(tmp / "a", "A", ["SENTINEL2_L2A_DEMO", "DEM_DEMO"], catalog=demo_catalog_dir)
    b = start_backend(tmp / "b", "B", ["SENTINEL1_GRD_DEMO", "DEM_DEMO"], catalog=demo_catalog_dir)
    aggregator = start_aggregator(tmp / "agg", {"A": a.url, "B": b.url}, health_interval=1)
    wait_ready([a, b, aggregator])
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from tests.support.processes import LOCALHOST, file_tail, free_port, wait_until_ready

REPO = Path(__file__).resolve().parents[2]
API = "/openeo/1.2"


def command(name: str, module: str) -> list[str]:
    """The console script beside this interpreter, else ``python -m module`` (an editable install made
    before the script was declared)."""
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def environment(**extra: str) -> dict[str, str]:
    """This environment with this checkout first on the path and no settings of this run leaking in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENEO_BACKEND_", "OPENEO_AGGREGATOR_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**env, **extra}


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen
    port: int
    log: Path
    data_dir: Path

    @property
    def root(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def url(self) -> str:
        return self.root + API

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the whole process group (gunicorn's arbiter and its workers), SIGKILL after ``grace``."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def tail(self, lines: int = 40) -> str:
        return file_tail(self.log, lines)


def _spawn(name: str, args: list[str], data_dir: Path, port: int, env: dict[str, str]) -> ServerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=data_dir,
                                   start_new_session=True)
    return ServerProcess(name, process, port, log, data_dir)


def start_backend(data_dir: Path, backend_id: str, collections: list[str], *, catalog: Path | None = None,
                  users: Iterable[tuple[str, str]] = (), job_runner: bool = False,
                  extra_env: dict[str, str] | None = None, **settings) -> ServerProcess:
    """`openeo-backend serve` (gunicorn, one worker) serving ``collections`` of the demo catalog;
    ``catalog``: an already generated demo catalog directory to link in instead of generating one."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if catalog is not None and not (data_dir / "demo-catalog").exists():
        (data_dir / "demo-catalog").symlink_to(catalog, target_is_directory=True)
    _add_users(f"sqlite:///{data_dir / 'backend.db'}", data_dir, users)
    port = free_port()
    env = environment(OPENEO_BACKEND_DEMO_COLLECTIONS=json.dumps(collections), OPENEO_BACKEND_BACKEND_ID=backend_id,
                      OPENEO_BACKEND_TITLE=f"Backend {backend_id}", OPENEO_BACKEND_ACCESS_LOG="false",
                      **{f"OPENEO_BACKEND_{k.upper()}": _env_value(v) for k, v in settings.items()},
                      **(extra_env or {}))
    args = command("openeo-backend", "backend.cli") + [
        "serve", "--host", LOCALHOST, "--port", str(port), "--data-dir", str(data_dir), "--workers", "1"]
    if not job_runner:
        args.append("--no-job-runner")
    return _spawn(f"backend {backend_id}", args, data_dir, port, env)


def aggregator_config(path: Path, backends: dict[str, str], **settings) -> Path:
    """A YAML config file: ``backends`` (id -> API url) and any other settings."""
    document = {"backends": [{"id": b, "url": url, "title": f"Backend {b}"} for b, url in backends.items()],
                **settings}
    path.write_text(yaml.safe_dump(document))
    return path


def start_aggregator(data_dir: Path, backends: dict[str, str], *, users: Iterable[tuple[str, str]] = (),
                     workers: int = 1, **settings) -> ServerProcess:
    """`openeo-aggregator serve` (gunicorn) over ``backends`` with ``settings`` in its config file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = aggregator_config(data_dir.parent / f"{data_dir.name}.yaml", backends,
                               **{"access_log": False, **settings})
    _add_users(f"sqlite:///{data_dir / 'aggregator.db'}", data_dir, users)
    port = free_port()
    args = command("openeo-aggregator", "aggregator.cli") + [
        "--config", str(config), "serve", "--host", LOCALHOST, "--port", str(port), "--data-dir", str(data_dir),
        "--workers", str(workers)]
    return _spawn("aggregator", args, data_dir, port, environment())


def wait_ready(servers: Iterable[ServerProcess], timeout: float = 240.0) -> None:
    """Until every server's /health answers (any status: the aggregator's may be 503 while its backends
    are down); a server that exits or does not answer in time fails with its log."""
    for server in servers:
        ready = wait_until_ready(server.process, lambda: _answers(f"{server.root}/health"), timeout=timeout,
                                 interval=0.2)
        assert ready, f"{server.name} did not start (exit {server.process.returncode}):\n{server.tail()}"


def _answers(url: str) -> bool:
    import requests

    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


def _add_users(database_url: str, data_dir: Path, users: Iterable[tuple[str, str]]) -> None:
    users = list(users)
    if not users:
        return
    from backend.storage.schema import open_database_at
    from backend.storage.users import UserStore

    db = open_database_at(database_url, data_dir)
    try:
        store = UserStore(db)
        for name, password in users:
            store.add(name, password)
    finally:
        db.dispose()


def _env_value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)

