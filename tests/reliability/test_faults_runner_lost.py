"""A job whose runners die too often (issue 13): `error` with `RunnerLost`, its hold released, and no file of the
dead runners' attempts left behind.

The dead runner is simulated where it leaves its traces: the job claimed in the database under another runner's
name with a lease that then expires, and a half-written run directory. The real runner (in this process, on the
session's Dask cluster) must find and settle it. The kill suite (test_faults_kill.py) kills real runners, but
with attempts to spare its jobs finish; this is the path of the last attempt.
"""

from __future__ import annotations

import time

import pytest
import requests

from backend.app import create_app
from backend.jobs.runner import JobRunner
from backend.jobs.store import JobStore
from backend.settings import load_settings
from tests.conftest import LiveServer
from tests.reliability.test_isolation import SMALL_JOB


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_catalog_dir):
    data_dir = tmp_path_factory.mktemp("runner-lost")
    (data_dir / "demo-catalog").symlink_to(demo_catalog_dir)
    live = LiveServer(create_app(load_settings(data_dir=data_dir, job_max_attempts=1, job_lease_seconds=1,
                                               job_poll_interval=0.2)))
    yield live
    live.stop()


def test_the_last_attempt_lost_fails_the_job_releases_its_hold_and_removes_its_files(server, job_runner):
    headers = server.auth_headers()
    api = server.url
    job_id = requests.post(api + "/jobs", json=SMALL_JOB, headers=headers, timeout=30).headers["OpenEO-Identifier"]
    assert requests.post(f"{api}/jobs/{job_id}/results", headers=headers, timeout=30).status_code == 202
    me = requests.get(api + "/me", headers=headers, timeout=30).json()
    assert me["budget"] < 1000  # held

    services = server.services
    claim = JobStore(services.db).claim("a-runner-that-dies", 0.5, 10)  # it claims the job, then is killed -9
    assert claim is not None and claim.job_id == job_id
    _, run_dir = services.results.new_run(job_id)
    (run_dir / "result.tif").write_bytes(b"II*\0 half a GeoTIFF")

    runner = JobRunner(services, cluster=job_runner._cluster).start()  # the runner that is still alive
    try:
        deadline = time.monotonic() + 30
        while (job := requests.get(f"{api}/jobs/{job_id}", headers=headers, timeout=30).json())["status"] not in (
                "finished", "error") and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        runner.stop()
    assert job["status"] == "error"
    (entry,) = requests.get(f"{api}/jobs/{job_id}/logs?level=error", headers=headers, timeout=30).json()["logs"]
    assert entry["code"] == "RunnerLost" and "stopped responding" in entry["message"]
    results = requests.get(f"{api}/jobs/{job_id}/results", headers=headers, timeout=30)
    assert results.status_code == 424 and "stopped responding" in results.json()["message"]
    assert requests.get(api + "/me", headers=headers, timeout=30).json()["budget"] == 1000  # released, not charged
    job_dir = services.settings.resolved_results_dir / job_id
    left = sorted(str(p.relative_to(job_dir)) for p in job_dir.rglob("*")) if job_dir.exists() else []
    assert left == [], f"files of the dead runner's attempt left behind: {left}"
