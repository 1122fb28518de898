"""Restart safety with the real CLI: kill -9 the job runner, then the whole server, while a job runs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import openeo
import psutil
import pytest
import rasterio
import requests

from backend.demo import DEMO_S2_COLLECTION
from tests.e2e.test_cli import CLI, free_port, run_cli

pytestmark = pytest.mark.slow
ENV = {"OPENEO_BACKEND_JOB_LEASE_SECONDS": "6", "OPENEO_BACKEND_JOB_MAX_ATTEMPTS": "3",
       "OPENEO_BACKEND_WORKERS": "1", "OPENEO_BACKEND_DASK_MEMORY_LIMIT": "1GiB"}


def _cmdline(process: psutil.Process) -> list[str]:
    """The command line of a live process; [] for one that exited meanwhile (a zombie, or gone)."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


class Server:
    def __init__(self, data_dir: Path, port: int):
        self.port = port
        self.process = subprocess.Popen(CLI + ["serve", "--port", str(port), "--data-dir", str(data_dir)],
                                        stdout=open(data_dir.parent / f"server-{port}.log", "a"), stderr=subprocess.STDOUT,
                                        env={**os.environ, **ENV}, start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/health", timeout=1).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):  # a worker still warming up: wait
                time.sleep(0.3)
        raise AssertionError("server did not start")

    def runner_pid(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for child in psutil.Process(self.process.pid).children():
                if "spawn_main" in " ".join(_cmdline(child)):
                    return child.pid
            time.sleep(0.2)
        raise AssertionError("no job runner process")

    def web_worker_pids(self) -> set[int]:
        """gunicorn's web workers: forks of serve, with its command line."""
        return {child.pid for child in psutil.Process(self.process.pid).children() if "serve" in _cmdline(child)}

    def kill_everything(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # server, runner and Dask workers: one process group
        self.process.wait(10)


def big_job(connection):
    tile = {"west": 675000, "south": 5145000, "east": 687800, "north": 5157800, "crs": 32632}  # one demo tile
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=tile, bands=["B04", "B08"])
    # uncompressed, no overviews: the file is written fast, the cluster work takes several seconds
    return cube.save_result("GTiff", options={"compression": "none", "overviews": False}).create_job()


def wait_status(job, wanted: set[str], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            metadata = job.describe()
        except (requests.ConnectionError, openeo.rest.OpenEoApiPlainError):
            time.sleep(0.5)
            continue
        if metadata["status"] in wanted:
            return metadata
        time.sleep(0.3)
    raise AssertionError(f"job never reached {wanted}")


def check_published_result(job, data_dir: Path, tmp_path: Path) -> None:
    paths = job.get_results().download_files(tmp_path / job.job_id)
    tif = next(p for p in paths if p.suffix == ".tif")
    with rasterio.open(tif) as result:
        assert result.count == 10 * 2 and result.read(1, window=((0, 8), (0, 8))).dtype == "float32"
    runs = list((data_dir / "jobs" / job.job_id).iterdir())
    assert len(runs) == 1, f"files of the killed attempt were left behind: {runs}"


def test_kill_runner_then_whole_server(tmp_path):
    data_dir = tmp_path / "data"
    assert run_cli("users", "add", "kim", "--password", "pw", "--data-dir", str(data_dir)).returncode == 0
    port = free_port()
    server = Server(data_dir, port)
    try:
        con = openeo.connect(server.url).authenticate_basic("kim", "pw")

        # 0. a web worker that exits (gunicorn starts another) leaves the job runner alone: workers are forks of
        # serve and unwind its stack on exit, through the `finally` that stops the runner
        runner = server.runner_pid()
        (worker,) = server.web_worker_pids()
        os.kill(worker, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not server.web_worker_pids() - {worker}:
            time.sleep(0.2)
        time.sleep(3)  # longer than ChildRunner's check interval: a stopped runner would have been replaced
        assert server.runner_pid() == runner and psutil.Process(runner).status() != psutil.STATUS_ZOMBIE

        # 1. kill -9 the runner: serve starts a new one, which recovers the job when the lease expires
        job = big_job(con)
        job.start()
        wait_status(job, {"running"})
        os.kill(server.runner_pid(), signal.SIGKILL)
        assert job.describe()["status"] == "running"
        metadata = wait_status(job, {"finished", "error"}, timeout=120)
        assert metadata["status"] == "finished", job.logs()
        warnings = [e["message"] for e in job.logs(level="warning")]
        assert any("stopped responding" in message and "queued again" in message for message in warnings)
        check_published_result(job, data_dir, tmp_path)

        # 2. kill -9 everything, then start the server again
        costs = [job.describe()["costs"]]
        job = big_job(con)
        job.start()
        wait_status(job, {"running"})
        server.kill_everything()
        server = Server(data_dir, port)
        con = openeo.connect(server.url).authenticate_basic("kim", "pw")
        job = con.job(job.job_id)
        metadata = wait_status(job, {"finished", "error"})
        assert metadata["status"] == "finished", job.logs()
        assert any("stopped responding" in e["message"] for e in job.logs(level="warning"))
        check_published_result(job, data_dir, tmp_path)
        costs.append(job.describe()["costs"])
        # the holds of the killed attempts were neither lost nor charged twice: one charge per job
        balance = float(run_cli("credits", "balance", "kim", "--data-dir", str(data_dir)).stdout)
        assert balance == pytest.approx(1000 - sum(costs), abs=1e-3)
        report = run_cli("credits", "report", "--user", "kim", "--format", "csv", "--data-dir", str(data_dir)).stdout
        charged = {line.split(",")[1]: float(line.split(",")[3]) for line in report.splitlines()[1:]}
        assert sum(charged.values()) == pytest.approx(sum(costs), abs=1e-3)
    finally:
        server.kill_everything()
