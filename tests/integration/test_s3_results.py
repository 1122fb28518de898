"""Batch-job results in S3 (``results_url``): a real S3 server (moto's), a real runner, the real openeo client."""

from __future__ import annotations

import time

import numpy as np
import openeo
import pytest
import rasterio
import requests

from backend.app import create_app
from backend.jobs.cluster import Cluster
from backend.jobs.runner import JobRunner
from backend.settings import load_settings
from tests.conftest import LiveServer
from tests.e2e.test_batch_jobs import ndvi_composite, wait_for
from tests.support.s3_server import serve_s3

pytestmark = pytest.mark.slow
BUCKET, PREFIX = "results", "openeo/jobs"


@pytest.fixture(scope="module")
def s3():
    with serve_s3() as server:
        server.client.create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture(scope="module")
def cluster(session_data_dir):
    """One LocalCluster for this module's runners (each test has its own server, database and store)."""
    cluster = Cluster(load_settings(data_dir=session_data_dir))
    yield cluster
    cluster.close()


@pytest.fixture
def backend(s3, cluster, session_data_dir, tmp_path):
    """A server + runner with a database of their own (the session's runner must not take these jobs)."""
    started = []

    def start(results_url: str):
        settings = load_settings(data_dir=session_data_dir, database_url=f"sqlite:///{tmp_path / 'own.db'}",
                                 results_dir=tmp_path / "staging", results_url=results_url,
                                 results_storage_options=s3.options)
        server = LiveServer(create_app(settings))
        runner = JobRunner(server.services, cluster=cluster).start()
        started.append((server, runner))
        name, password = server.new_user()
        return server, openeo.connect(server.url).authenticate_basic(name, password)

    yield start
    for server, runner in started:
        runner.stop()
        server.stop()


def test_results_are_stored_in_s3_and_streamed_back(s3, backend, tmp_path, caplog):
    server, connection = backend(f"s3://{BUCKET}/{PREFIX}")
    cube = ndvi_composite(connection)
    cube.download(tmp_path / "sync.tif", format="GTiff")
    job = cube.execute_batch(out_format="GTiff", max_poll_interval=0.5, print=lambda *_: None)
    run = server.services.jobs.published(job.job_id)["run"]

    # in the bucket under <prefix>/<job>/<run>/, nothing left in the local staging dir
    assert s3.keys(BUCKET, f"{PREFIX}/{job.job_id}/") == [f"{PREFIX}/{job.job_id}/{run}/{name}"
                                                          for name in ("quicklook.png", "result.tif")]
    assert not (tmp_path / "staging" / job.job_id).exists()

    # the real client's download equals the synchronous result
    results = job.get_results()
    assets = results.get_metadata()["assets"]
    tif = next(p for p in results.download_files(tmp_path / "batch") if p.name == "result.tif")
    with rasterio.open(tmp_path / "sync.tif") as sync, rasterio.open(tif) as batch:
        assert (batch.crs, batch.transform, batch.shape) == (sync.crs, sync.transform, sync.shape)
        np.testing.assert_array_equal(batch.read(), sync.read())
    assert assets["result.tif"]["file:size"] == tif.stat().st_size

    # token-free signed link: GET, HEAD, Range, conditional requests, CORS
    href = assets["result.tif"]["href"]
    whole = requests.get(href)
    assert whole.status_code == 200 and whole.content == tif.read_bytes()
    assert whole.headers["Content-Type"].startswith("image/tiff")
    assert whole.headers["Access-Control-Allow-Origin"] == "*"
    size = len(whole.content)
    head = requests.head(href)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == size and head.content == b""
    assert head.headers["Accept-Ranges"] == "bytes"
    part = requests.get(href, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{size}" and part.headers["Content-Length"] == "100"
    tail = requests.get(href, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == whole.content[-50:]
    head_part = requests.head(href, headers={"Range": "bytes=0-9"})
    assert head_part.status_code == 206 and head_part.headers["Content-Length"] == "10"
    beyond = requests.get(href, headers={"Range": f"bytes={size}-{size + 10}"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
    assert beyond.headers["Access-Control-Allow-Origin"] == "*"
    assert requests.get(href, headers={"If-None-Match": whole.headers["ETag"]}).status_code == 304
    forged = requests.get(href.replace("result.tif", "quicklook.png"))
    assert forged.status_code == 403
    png = requests.get(assets["quicklook.png"]["href"])
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"

    # a re-run replaces the previous run in the bucket
    job.start_and_wait(max_poll_interval=0.5, print=lambda *_: None)
    rerun = server.services.jobs.published(job.job_id)["run"]
    assert rerun != run
    stored = set()
    deadline = time.monotonic() + 15  # a run that lost the job is discarded by its own thread, maybe later
    while time.monotonic() < deadline and stored != {rerun}:
        stored = {key.split("/")[-2] for key in s3.keys(BUCKET, f"{PREFIX}/{job.job_id}/")}
        time.sleep(0.2)
    runner_said = [r.getMessage() for r in caplog.records if r.name.startswith("backend.jobs")]
    assert stored == {rerun}, (run, runner_said, [e["message"] for e in job.logs()])

    # deleting the job removes its objects
    job.delete()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.services.jobs.status_of(job.job_id) is not None:
        time.sleep(0.2)
    assert server.services.jobs.status_of(job.job_id) is None, "deleted job not purged"
    assert s3.keys(BUCKET, f"{PREFIX}/{job.job_id}/") == []


def test_failed_upload_fails_the_job_with_a_storage_failure(s3, backend, tmp_path):
    server, connection = backend("s3://no-such-bucket/results")
    job = ndvi_composite(connection).create_job(out_format="GTiff")
    job.start()
    metadata = wait_for(job, {"error", "finished"})
    assert metadata["status"] == "error"
    failures = job.logs(level="error")
    assert [entry["code"] for entry in failures] == ["StorageFailure"]
    assert "could not be uploaded" in failures[0]["message"]
    assert not (tmp_path / "staging" / job.job_id).exists() or not any((tmp_path / "staging" / job.job_id).iterdir())
