"""The file workspace under `openeo-backend serve` (gunicorn, gthread): a 50 MB upload streams through the
worker without the worker holding it (peak RSS), and refusals over the quota reach the client as openEO
errors (not a connection reset) even while it is still sending."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import openeo
import psutil
import pytest
import requests
from openeo.rest import OpenEoApiError

from tests.e2e.test_cli import CLI, free_port, run_cli

pytestmark = pytest.mark.slow
MB = 1024 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("files-gunicorn")
    assert run_cli("users", "add", "fay", "--password", "pw", "--data-dir", str(data_dir)).returncode == 0
    port = free_port()
    env = {**os.environ, "OPENEO_BACKEND_FILES_QUOTA_BYTES": str(80 * MB), "OPENEO_BACKEND_DEMO_CATALOG": "false"}
    server = subprocess.Popen(CLI + ["serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "1",
                                     "--no-job-runner"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{root}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            pytest.fail("server did not start")
        yield root, psutil.Process(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _peak_rss(process: psutil.Process) -> int:
    """Peak resident memory (VmHWM) of the gunicorn worker(s), in bytes."""
    total = 0
    for child in process.children(recursive=True):
        for line in open(f"/proc/{child.pid}/status"):
            if line.startswith("VmHWM:"):
                total = max(total, int(line.split()[1]) * 1024)
    return total


def test_large_upload_streams_and_quota_refusals_are_clean(served, tmp_path):
    root, arbiter = served
    con = openeo.connect(root).authenticate_basic("fay", "pw")
    con.list_files()  # the worker has served a files request: its imports are in the peak already
    before = _peak_rss(arbiter)

    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(50):
            block = os.urandom(MB)
            digest.update(block)
            out.write(block)
    con.upload_file(source, target="big/big.bin")
    grown = _peak_rss(arbiter) - before
    assert grown < 20 * MB, f"the worker's peak memory grew by {grown / MB:.0f} MB for a 50 MB upload"
    back = con.get_file("big/big.bin").download(tmp_path / "back.bin")
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest.hexdigest()

    # 50 MB stored of 80 MB: a 40 MB upload is refused from its Content-Length, the client still sending.
    over = tmp_path / "over.bin"
    over.write_bytes(os.urandom(40 * MB))
    with pytest.raises(OpenEoApiError) as caught:
        con.upload_file(over, target="over.bin")
    assert (caught.value.http_status_code, caught.value.code) == (400, "StorageQuotaExceeded")
    # Chunked (no Content-Length): refused once the stream outgrows the quota.
    headers = {"Authorization": f"Bearer {con.auth.bearer}"}
    chunked = requests.put(f"{root}/openeo/1.2/files/chunked.bin", headers=headers,
                           data=(os.urandom(MB) for _ in range(40)), timeout=60)
    assert (chunked.status_code, chunked.json()["code"]) == (400, "StorageQuotaExceeded")
    assert [(str(f.path), f.metadata["size"]) for f in con.list_files()] == [("big/big.bin", 50 * MB)]
