"""Batch jobs on an existing Dask cluster: real `dask scheduler` and `dask worker` processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio
from distributed import Client

from backend.app import create_app
from backend.demo import DEMO_S2_COLLECTION
from backend.jobs.runner import JobRunner
from backend.settings import load_settings
from tests.conftest import LiveServer
from tests.e2e.test_cli import free_port
from tests.e2e.test_sync_processing import AREA

DASK = str(Path(sys.executable).with_name("dask"))
pytestmark = pytest.mark.slow


@pytest.fixture
def dask_cluster():
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([DASK, "worker", address, "--nthreads", "2", "--nworkers", "1",
                               "--memory-limit", "1GiB", "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(30)


def test_job_runs_on_the_configured_scheduler(dask_cluster, session_data_dir, tmp_path):
    # the session's demo catalog, a database of its own (the session's runner must not take this job)
    settings = load_settings(data_dir=session_data_dir, database_url=f"sqlite:///{tmp_path / 'own.db'}",
                             dask_scheduler=dask_cluster)
    server = LiveServer(create_app(settings))
    runner = JobRunner(server.services).start()
    try:
        name, password = server.new_user()
        con = openeo.connect(server.url).authenticate_basic(name, password)
        cube = con.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA,
                                   temporal_extent=["2022-06-01", "2022-07-01"], bands=["B04", "B08"])
        cube = cube.ndvi(nir="B08", red="B04").reduce_dimension("t", "max")
        cube.download(tmp_path / "sync.tif")
        job = cube.execute_batch(out_format="GTiff", max_poll_interval=0.5, print=lambda *_: None)
        paths = job.get_results().download_files(tmp_path / "batch")
        with rasterio.open(tmp_path / "sync.tif") as sync, rasterio.open(
                next(p for p in paths if p.name == "result.tif")) as batch:
            np.testing.assert_array_equal(batch.read(), sync.read())
        with Client(dask_cluster) as client:  # the work happened on that cluster
            prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
        assert prefixes, "the external scheduler never saw a task"
    finally:
        runner.stop()
        server.stop()
