"""The results path full (issue 13): a job fails with a clear message, its hold is released, nothing is corrupted.

The results directory is a small tmpfs (mounted by the test: needs root, as the UDF sandbox does) that the test
fills: first its space (the writer fails), then its inodes (the run directory cannot even be made). The backend
is the real app behind a real HTTP server with a real job runner (sharing the session's Dask LocalCluster).
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest
import requests

from backend.app import create_app
from backend.jobs.runner import JobRunner
from backend.settings import load_settings
from tests.conftest import LiveServer
from tests.reliability.test_isolation import SMALL_JOB

MOUNT_BYTES = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def results_mount(tmp_path_factory):
    mount = tmp_path_factory.mktemp("full-results")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MOUNT_BYTES},nr_inodes=4096", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_catalog_dir, results_mount, job_runner):
    data_dir = tmp_path_factory.mktemp("disk-data")
    (data_dir / "demo-catalog").symlink_to(demo_catalog_dir)
    settings = load_settings(data_dir=data_dir, results_dir=results_mount, job_poll_interval=0.2)
    live = LiveServer(create_app(settings))
    runner = JobRunner(live.services, cluster=job_runner._cluster).start()  # the session's LocalCluster
    yield live
    runner.stop()
    live.stop()


class User:
    def __init__(self, live: LiveServer):
        self.live = live
        self.headers = live.auth_headers()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.live.url + path, headers=self.headers, timeout=60, **kwargs)

    def run_job(self, job_id: str | None = None) -> tuple[str, dict]:
        if job_id is None:
            job_id = self.request("POST", "/jobs", json=SMALL_JOB).headers["OpenEO-Identifier"]
        assert self.request("POST", f"/jobs/{job_id}/results").status_code == 202
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = self.request("GET", f"/jobs/{job_id}").json()
            if job["status"] in ("finished", "error"):
                return job_id, job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still {job['status']} after 120 s")

    def downloads(self, job_id: str) -> dict[str, str]:
        assets = self.request("GET", f"/jobs/{job_id}/results").json()["assets"]
        return {name: hashlib.sha256(requests.get(a["href"], timeout=60).content).hexdigest()
                for name, a in assets.items()}


def fill_space(mount: Path) -> Path:
    ballast = mount / "ballast"
    with open(ballast, "wb", buffering=0) as out:  # unbuffered: nothing left to fail at close
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return ballast


def fill_inodes(mount: Path) -> list[Path]:
    made = []
    try:
        while True:
            path = mount / f"inode-{len(made)}"
            path.mkdir()
            made.append(path)
    except OSError:
        pass
    return made


def check_failed_and_released(user: User, job_id: str, job: dict, mount: Path) -> None:
    assert job["status"] == "error"
    (entry,) = user.request("GET", f"/jobs/{job_id}/logs?level=error").json()["logs"]
    assert entry["code"] == "StorageFailure" and "disk space" in entry["message"], entry
    results = user.request("GET", f"/jobs/{job_id}/results")
    assert results.status_code == 424 and "disk space" in results.json()["message"]
    leftovers = sorted(p.name for p in (mount / job_id).rglob("*")) if (mount / job_id).exists() else []
    assert leftovers == [], f"partial files of {job_id}: {leftovers}"
    me = user.request("GET", "/me").json()
    assert me["budget"] == pytest.approx(1000 - user.charged, abs=1e-3)  # the failed job cost nothing
    ledger = user.live.services.ledger
    assert [e.ref for e in ledger.entries(me["user_id"]) if e.kind == "hold" and ledger.held(e.ref)] == []


def test_full_results_path_fails_the_job_clearly_and_corrupts_nothing(server, results_mount):
    user = User(server)
    done_id, done = user.run_job()  # a finished job before the disk fills
    assert done["status"] == "finished"
    user.charged = done["costs"]
    before = user.downloads(done_id)

    ballast = fill_space(results_mount)
    job_id, job = user.run_job()
    check_failed_and_released(user, job_id, job, results_mount)
    assert user.downloads(done_id) == before  # the earlier results are intact

    ballast.unlink()
    inodes = fill_inodes(results_mount)
    job_id2, job2 = user.run_job()
    check_failed_and_released(user, job_id2, job2, results_mount)
    for path in inodes:
        path.rmdir()

    # space again: the same job runs again and finishes; the two failures cost nothing
    _, again = user.run_job(job_id)
    assert again["status"] == "finished", user.request("GET", f"/jobs/{job_id}/logs").text
    user.charged += again["costs"]
    assert user.request("GET", "/me").json()["budget"] == pytest.approx(1000 - user.charged, abs=1e-3)
    assert user.downloads(done_id) == before
