"""Overlapping POST /result requests in ONE gunicorn worker (gthread): 50 requests of mixed sizes at
once, each with its own deadline and metered CPU, and the worker unaffected afterwards.

The server is the real `openeo-backend serve` (1 worker, 8 threads) on the session's data dir. Its only
plan charges CPU seconds and nothing else, so OpenEO-Costs is the CPU the request's own meter counted.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import rasterio
import requests

from backend.demo import DEMO_S2_COLLECTION
from tests.e2e.test_cli import CLI
from tests.support.processes import LOCALHOST, free_port, http_ok, stop_process, wait_until_ready

pytestmark = pytest.mark.slow
TIMEOUT = 10  # sync_timeout of the server (s)
THREADS = 8
CPU_PLAN = [{"name": "cpu", "description": "CPU seconds only", "fixed_fee": 0, "per_cpu_second": 1,
             "per_gb_second": 0, "per_megapixel": 0}]


def graph(extent: dict, dates: list[str], bands: list[str], reducer: str | None = None, ndvi: bool = True,
          kernel: int = 0) -> dict:
    nodes = {"load": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "spatial_extent": {**extent, "crs": 32632}, "temporal_extent": dates,
        "bands": bands}}}
    last = "load"
    if kernel:  # a kernel x kernel box filter on every date and band: CPU-bound, whatever the disk
        nodes["smooth"] = {"process_id": "apply_kernel", "arguments": {
            "data": {"from_node": last}, "kernel": [[1] * kernel] * kernel, "factor": 1 / kernel ** 2}}
        last = "smooth"
    if ndvi:
        nodes["ndvi"] = {"process_id": "ndvi", "arguments": {"data": {"from_node": last}, "nir": "B08", "red": "B04"}}
        last = "ndvi"
    if reducer:
        nodes["reduce"] = {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": last}, "dimension": "t", "reducer": {"process_graph": {"r": {
                "process_id": reducer, "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}}
        last = "reduce"
    nodes["save"] = {"process_id": "save_result", "arguments": {"data": {"from_node": last}, "format": "GTiff"},
                     "result": True}
    return {"process": {"process_graph": nodes}}


# 28 x 28 px, one date (~0.3 s alone); 300 x 300 px, June mean NDVI (~0.4 s alone); a whole tile, a
# year, 5 bands, a 21 x 21 box filter on every date and band, median: CPU-bound work far beyond the deadline
# (27 s alone on 2026-12-05; with a 9 x 9 filter it took 22 s with the first demo COGs, then 10.7 s, then
# 7.3 s as decoding got faster, and answered within its deadline).
TINY = graph({"west": 679720, "south": 5151080, "east": 680000, "north": 5151360}, ["2022-06-01", "2022-06-10"],
             ["B04", "B08"])
MEDIUM = graph({"west": 677000, "south": 5148000, "east": 680000, "north": 5151000}, ["2022-06-01", "2022-07-01"],
               ["B04", "B08"], "mean")
SLOW = graph({"west": 675000, "south": 5145000, "east": 687800, "north": 5157800}, ["2022-01-01", "2023-01-01"],
             ["B02", "B03", "B04", "B08", "B11"], "median", ndvi=False, kernel=21)


@pytest.fixture(scope="module")
def server(live_server, session_data_dir, tmp_path_factory):
    """`serve` with 1 worker of 8 threads; as many sync slots as threads, so every request computes at once."""
    port = free_port()
    log = tmp_path_factory.mktemp("sync-concurrency") / "server.log"
    env = {**os.environ, "OPENEO_BACKEND_WORKERS": "1", "OPENEO_BACKEND_THREADS": str(THREADS),
           "OPENEO_BACKEND_SYNC_MAX_CONCURRENT": str(THREADS), "OPENEO_BACKEND_SYNC_TIMEOUT": str(TIMEOUT),
           "OPENEO_BACKEND_PLANS": json.dumps(CPU_PLAN), "OPENEO_BACKEND_JOB_RUNNER": "false",
           "OPENEO_BACKEND_ACCESS_LOG": "false"}
    with open(log, "w") as output:
        process = subprocess.Popen(CLI + ["serve", "--host", LOCALHOST, "--port", str(port), "--data-dir",
                                          str(session_data_dir)], stdout=output, stderr=subprocess.STDOUT, env=env)
    root = f"http://{LOCALHOST}:{port}"
    try:
        assert wait_until_ready(process, lambda: http_ok(root + "/health", timeout=2), timeout=120, interval=0.3), \
            log.read_text()[-3000:]
        yield root + "/openeo/1.2", live_server.services
    finally:
        stop_process(process, name="openeo-backend serve")


def headers_of_new_user(url: str, services) -> tuple[str, dict]:
    user = services.users.add(f"burst-{os.urandom(4).hex()}", "pw")
    token = requests.get(url + "/credentials/basic", auth=(user.name, "pw"), timeout=30).json()["access_token"]
    return user.user_id, {"Authorization": f"Bearer basic//{token}"}


def post(url: str, headers: dict, body: dict, delay: float = 0.0) -> tuple[requests.Response, float]:
    time.sleep(delay)
    started = time.monotonic()
    response = requests.post(url + "/result", json=body, headers=headers, timeout=300)
    return response, time.monotonic() - started


def pixels(response: requests.Response) -> np.ndarray:
    with rasterio.open(io.BytesIO(response.content)) as dataset:
        return dataset.read()


def assert_correct(response: requests.Response, expected: np.ndarray, services) -> float:
    """200, the reference pixels, and costs = the CPU metered for it (> 0), as charged in the ledger."""
    assert response.status_code == 200, response.text
    assert np.array_equal(pixels(response), expected, equal_nan=True)
    costs = float(response.headers["OpenEO-Costs"])
    assert costs > 0, "no CPU was metered for this request"
    assert services.ledger.charged(f"sync-{response.headers['OpenEO-Identifier']}") == pytest.approx(costs)
    return costs


def test_fifty_overlapping_requests_in_one_worker(server):
    url, services = server
    user_id, shared = headers_of_new_user(url, services)  # requests that succeed are told apart by their id
    services.ledger.grant(user_id, 10_000)  # 50 holds of sync_hold credits at once
    references = {}
    for name, body in (("tiny", TINY), ("medium", MEDIUM)):  # computed alone first
        response, _ = post(url, shared, body)
        assert response.status_code == 200, response.text
        references[name] = pixels(response)
    assert references["tiny"].shape == (1, 28, 28) and references["medium"].shape == (1, 300, 300)

    # 2 slow requests (the second started 2 s after the first), 8 medium, 40 tiny: all at once
    kinds = ["slow"] + ["medium"] * 8 + ["tiny"] * 20 + ["slow"] + ["tiny"] * 20
    bodies = {"slow": SLOW, "medium": MEDIUM, "tiny": TINY}
    users = [headers_of_new_user(url, services) if kind == "slow" else (user_id, shared) for kind in kinds]
    with ThreadPoolExecutor(len(kinds)) as pool:
        futures = [pool.submit(post, url, headers, bodies[kind], 2.0 if kind == "slow" and i else 0.0)
                   for i, ((_, headers), kind) in enumerate(zip(users, kinds))]
        answers = [future.result() for future in futures]

    for (owner, _), kind, (response, seconds) in zip(users, kinds, answers):
        if kind == "slow":
            # its own deadline, counted from its own start: not none (it would finish after ~20-60 s with a
            # result), not another request's (the two started 2 s apart)
            assert response.status_code == 400, (seconds, response.text[:300])
            error = response.json()
            assert error["code"] == "ProcessGraphComplexity" and f"the {TIMEOUT} s allowed" in error["message"]
            assert TIMEOUT <= seconds < TIMEOUT + 40
            # charged the CPU it used until then, metered by its own meter (a user of its own: an error has no
            # OpenEO-Identifier)
            charges = [-e.amount for e in services.ledger.entries(owner) if e.kind == "charge"]
            assert len(charges) == 1 and charges[0] > 0
        else:
            assert_correct(response, references[kind], services)

    # afterwards, on the same (reused) threads: nothing left over from the burst
    for body, name in [(TINY, "tiny")] * 10 + [(MEDIUM, "medium")]:
        response, _ = post(url, shared, body)
        assert_correct(response, references[name], services)
