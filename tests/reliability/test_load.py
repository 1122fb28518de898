"""Load on this machine: many synchronous requests and batch jobs at once against `openeo-backend serve` with its
defaults (2 gunicorn workers × 4 threads, 2 sync slots per worker, the job runner on a Dask LocalCluster).

Sync: N different small graphs (mean NDVI, `add`, maximum red; each over its own area) sent from N threads at
once, then the same N one by one: 0 errors (a 503 or 429 is an error too: a user's client sending N small
requests on default settings must not see one), every concurrent answer equal to its serial one, each request
charged once (one hold, one release, one charge equal to its ``OpenEO-Costs``).
Jobs: M jobs created and started from M threads at once and polled to the end: all finish, each result equals
the serial synchronous result of the same graph, each job charged once (its ``costs``), nothing refunded.
The account's balance equals the sum of its ledger entries afterwards.

The same through `openeo-aggregator serve` (its defaults) in front of that backend (A: Sentinel-2, DEM) and a
second one (B: Sentinel-1, DEM; one web worker, one Dask worker): `add` may go to either; the federation ledger
charges each request and job once.

Sizes: short profile (CI) 20 requests + 10 jobs directly and 10 + 5 through the aggregator, long profile
100 + 50 each, and 16 medium requests (~1 s each) at once. p50/p99 latency and throughput are printed (run with ``-s``) and recorded as the tests' user
properties (JUnit XML).
"""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from tests.reliability import load_driver as load
from tests.reliability.load_servers import ledger_by_ref, serve_aggregator, serve_backends, token_headers
from tests.reliability.profile import scaled
from tests.support.federation import ServerProcess, stop_all

SYNC_REQUESTS = scaled(20, 100)
JOBS = scaled(10, 50)
FEDERATED_SYNC_REQUESTS = scaled(10, 100)
FEDERATED_JOBS = scaled(5, 50)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("load")


@pytest.fixture(scope="module")
def servers():
    """Every server this module starts, stopped together at its end (they shut down in parallel)."""
    started: list[ServerProcess] = []
    yield started
    stop_all(started)


@pytest.fixture(scope="module")
def backends(servers, demo_catalog_dir, base):
    """A (serve's defaults), loaded directly and through the aggregator, and a smaller B (idle until the
    aggregator routes to it)."""
    started = serve_backends(demo_catalog_dir, {
        "A": (base / "a", [DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION], {}),
        "B": (base / "b", [DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION], {"workers": 1, "dask_workers": 1})})
    servers.extend(started.values())
    return started


@pytest.fixture(scope="module")
def backend(backends):
    return backends["A"]


@pytest.fixture(scope="module")
def aggregator(servers, backends, base):
    server = serve_aggregator(base / "aggregator", {b: server.url for b, server in backends.items()})
    servers.append(server)
    return server


@pytest.fixture(scope="module")
def federated_headers(aggregator):
    return token_headers(aggregator.url)


@pytest.fixture(scope="module")
def headers(backend):
    return token_headers(backend.url)


@pytest.fixture(scope="module")
def user_id(backend, headers):
    return requests.get(f"{backend.url}/me", headers=headers, timeout=60).json()["user_id"]


def test_concurrent_sync_requests_all_answer_as_serial_ones(backend, headers, user_id, record_property):
    work = load.workload(SYNC_REQUESTS)
    with load.light_request_during(backend.url) as light:
        concurrent, wall = load.all_at_once(load.sync_calls(backend.url, headers, work))
    serial, serial_wall = load.one_by_one(load.sync_calls(backend.url, headers, work))
    record_property("sync_concurrent", load.figures(f"{SYNC_REQUESTS} sync requests at once", concurrent, wall))
    record_property("capabilities_during_sync_load", light)
    record_property("sync_serial", load.figures(f"{SYNC_REQUESTS} sync requests one by one", serial, serial_wall))

    assert load.differences(concurrent, serial) == [] and light["status"] == 200
    assert all(load.informative(o.value) for o in serial)
    assert len({load.fingerprint(o.value) for o in serial}) == SYNC_REQUESTS  # different graphs, different results
    entries = ledger_by_ref(backend.data_dir / "backend.db", user_id)
    findings = [load.charged_once(entries, f"sync-{o.extra['id']}", o.extra["costs"]) for o in concurrent + serial]
    assert [f for f in findings if f] == []
    assert entries["(balance)"]["account"] == entries["(balance)"]["entries"]


@pytest.mark.long_profile
def test_concurrent_medium_requests_wait_for_a_slot_instead_of_503(backend, headers, record_property):
    """16 requests of ~1 s each at once: the slot wait of 5 s (the old default) answered one of them 503 while
    others that came with it, queued in gunicorn, were served after 9 s (see
    tests/api/test_sync_limits.py::test_a_request_waits_for_slots_that_stay_busy_longer_than_a_few_seconds)."""
    work = [(f"medium-{i}", load.medium_ndvi(i)) for i in range(16)]
    concurrent, wall = load.all_at_once(load.sync_calls(backend.url, headers, work))
    serial, serial_wall = load.one_by_one(load.sync_calls(backend.url, headers, work))
    record_property("medium_concurrent", load.figures("16 medium sync requests at once", concurrent, wall))
    load.figures("16 medium sync requests one by one", serial, serial_wall)
    assert load.differences(concurrent, serial) == []


def test_concurrent_jobs_all_finish_with_the_serial_result(backend, headers, user_id, record_property):
    work = load.workload(JOBS, first=300)  # areas the sync test did not use
    jobs, wall = load.all_at_once(load.job_calls(backend.url, headers, work))
    serial, serial_wall = load.one_by_one(load.sync_calls(backend.url, headers, work))
    record_property("jobs_concurrent", load.figures(f"{JOBS} jobs at once (create, start, poll, download)",
                                                    jobs, wall))
    load.figures(f"{JOBS} reference sync requests one by one", serial, serial_wall)

    assert load.differences(jobs, serial) == []
    entries = ledger_by_ref(backend.data_dir / "backend.db", user_id)
    findings = [load.charged_once(entries, f"job-{o.extra['id']}-", o.extra["costs"]) for o in jobs]
    assert [f for f in findings if f] == []
    assert entries["(balance)"]["account"] == entries["(balance)"]["entries"]


def test_through_the_aggregator_concurrent_sync_requests_answer_as_serial_ones(aggregator, federated_headers,
                                                                                record_property):
    work = load.workload(FEDERATED_SYNC_REQUESTS, first=400)
    concurrent, wall = load.all_at_once(load.sync_calls(aggregator.url, federated_headers, work))
    serial, serial_wall = load.one_by_one(load.sync_calls(aggregator.url, federated_headers, work))
    record_property("federated_sync_concurrent", load.figures(
        f"{FEDERATED_SYNC_REQUESTS} sync requests at once through the aggregator", concurrent, wall))
    record_property("federated_sync_serial", load.figures(
        f"{FEDERATED_SYNC_REQUESTS} sync requests one by one through the aggregator", serial, serial_wall))

    print("[load] answered by backend:", dict(Counter(o.extra.get("backend") for o in concurrent + serial)))
    assert load.differences(concurrent, serial) == []
    assert len({load.fingerprint(o.value) for o in serial}) == FEDERATED_SYNC_REQUESTS
    user_id = requests.get(f"{aggregator.url}/me", headers=federated_headers, timeout=60).json()["user_id"]
    entries = ledger_by_ref(aggregator.data_dir / "aggregator.db", user_id)
    findings = [load.charged_once(entries, f"fed-result:{o.extra['backend']}:{o.extra['id']}", o.extra["costs"])
                for o in concurrent + serial]
    assert [f for f in findings if f] == []
    assert entries["(balance)"]["account"] == entries["(balance)"]["entries"]


def test_through_the_aggregator_concurrent_jobs_finish_with_the_serial_result(aggregator, federated_headers,
                                                                               record_property):
    work = load.workload(FEDERATED_JOBS, first=600)
    jobs, wall = load.all_at_once(load.job_calls(aggregator.url, federated_headers, work))
    serial, serial_wall = load.one_by_one(load.sync_calls(aggregator.url, federated_headers, work))
    record_property("federated_jobs_concurrent", load.figures(
        f"{FEDERATED_JOBS} jobs at once through the aggregator", jobs, wall))
    load.figures(f"{FEDERATED_JOBS} reference sync requests one by one through the aggregator", serial, serial_wall)

    print("[load] jobs run by backend:", dict(Counter(o.extra.get("backend") for o in jobs)))
    assert load.differences(jobs, serial) == []
    user_id = requests.get(f"{aggregator.url}/me", headers=federated_headers, timeout=60).json()["user_id"]
    entries = ledger_by_ref(aggregator.data_dir / "aggregator.db", user_id)
    findings = [load.charged_once(entries, f"fed-job:{o.extra['backend']}:{o.extra['id']}#", o.extra["costs"])
                for o in jobs]
    assert [f for f in findings if f] == []
    assert entries["(balance)"]["account"] == entries["(balance)"]["entries"]
