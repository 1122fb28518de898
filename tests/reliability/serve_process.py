"""`openeo-backend serve` as a real process tree for the fault suites, and its parts to kill.

    serve (gunicorn arbiter) ─┬─ web workers (forks of serve)
                              └─ job runner (spawned) ─── Dask LocalCluster worker processes (spawned)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import requests

from tests.e2e.test_cli import CLI, run_cli

API = "/openeo/1.2"


def prepare_data_dir(data_dir: Path, demo_catalog_dir: Path, users: list[str], password: str) -> None:
    """A data dir with a copy of the session's demo catalog (``demo_catalog_dir``: not generated again) and
    basic-auth users."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(demo_catalog_dir, data_dir / "demo-catalog")
    for name in users:
        added = run_cli("users", "add", name, "--password", password, "--data-dir", str(data_dir))
        assert added.returncode == 0, added.stderr


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # exited meanwhile
        return ""


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class ServeProcess:
    def __init__(self, data_dir: Path, port: int, env: dict[str, str], log_path: Path):
        self.port, self.data_dir = port, data_dir
        self.root = f"http://127.0.0.1:{port}"
        self.url = self.root + API
        self.process = subprocess.Popen(
            CLI + ["serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=open(log_path, "a"), stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True)
        self.tree: set[int] = set()  # every pid seen in this server's tree (to check none outlives it)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited with {self.process.returncode}: see {log_path}"
            try:
                if requests.get(self.root + "/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(f"serve did not answer within 120 s: see {log_path}")

    def _children(self, parent: int) -> list[psutil.Process]:
        try:
            children = psutil.Process(parent).children()
        except psutil.NoSuchProcess:
            return []
        alive = [child for child in children if _alive(child)]
        self.tree.update(child.pid for child in alive)
        return alive

    def web_workers(self) -> set[int]:
        return {c.pid for c in self._children(self.process.pid) if "serve" in _cmdline(c)}

    def runner(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self._children(self.process.pid):
                if "spawn_main" in _cmdline(child):
                    return child.pid
            time.sleep(0.2)
        raise AssertionError("no job runner process")

    def dask_workers(self, timeout: float = 60) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = {c.pid for c in self._children(self.runner()) if "spawn_main" in _cmdline(c)}
            if workers:
                return workers
            time.sleep(0.2)
        raise AssertionError("the job runner has no Dask worker processes")

    def kill_server_only(self) -> None:
        """kill -9 of the API server (gunicorn's arbiter) alone: its web workers and job runner must notice."""
        self.web_workers(), self.dask_workers()  # remember the whole tree
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def survivors(self, timeout: float) -> list[str]:
        """Processes of this server's tree still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = []
            for pid in self.tree:
                try:
                    process = psutil.Process(pid)
                    if _alive(process):
                        left.append(f"{pid} {_cmdline(process)[:100]}")
                except psutil.NoSuchProcess:
                    pass
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.3)

    def stop(self) -> None:
        for pid in [self.process.pid, *self.tree]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)
