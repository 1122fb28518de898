"""The aggregator with three of its five backends misbehaving at once (issue 13): merged listings stay
correct and fast, jobs on the healthy backends are unaffected.

`openeo-aggregator serve` (gunicorn, its own process) federates two real backends, A (the session's
live server: all demo collections, its job runner) and B (an in-process backend serving the DEM only),
and three loopback servers: G answers its capabilities and the login, then garbage to every call (every
kind of GARBAGE in turn: invalid or truncated JSON, HTML 200, a PNG, a body that is not gzip although it
says so, wrong shapes, a proxy's HTML 502); H answers its capabilities and the login (so its health probe
passes now and then and its circuit closes again) but accepts every other call and never answers it; F,
a fake backend with one collection, process and job of its own, goes down and up every FLAP_PERIOD
seconds. The user has one job made directly on A and one on B.

Every answer of GET /collections, /processes and /jobs must hold exactly A's and B's items (ids, which
backends hold them, their values), F's items exactly when F is not in ``federation:missing``, never any
of G's, and name G and H in ``federation:missing``; it must come within the deadline the aggregator's
settings give that listing (read back from its config file) times SLACK. The run goes on until G has
served every kind of garbage to each listing (and at least MIN_SOAK seconds). Meanwhile a job made
through the aggregator runs on A from creation to download, and every call on a job of G answers an
openEO error naming G (or, where no document is needed, G's success), for every kind of garbage.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests

from aggregator.jobs import ids
from aggregator.settings import AggregatorSettings, load_settings
from backend.app import create_app
from backend.demo import DEMO_DEM_COLLECTION, DEMO_S2_COLLECTION
from backend.settings import load_settings as backend_settings
from tests.conftest import LiveServer
from tests.reliability.misbehaving_backends import (GARBAGE, GARBAGE_COLLECTION, GARBAGE_JOB, GARBAGE_PROCESS,
                                                    Flapping, GarbageBackend, HungApi)
from tests.reliability.profile import scaled
from tests.support.fake_backends import FakeBackend
from aggregator.servers import link_catalog
from tests.support.federation import start_aggregator, wait_ready

HEALTHY = ("A", "B")
FLAP_PERIOD = 0.4
# Short timeouts, so that faults show fast; the healthy backends answer in well under them.
SETTINGS = {"connect_timeout": 0.5, "metadata_timeout": 3.0, "fanout_deadline": 1.5, "jobs_listing_deadline": 1.5,
            "jobs_timeout": 30.0, "health_interval": 0.5, "health_recheck": 0.2, "health_timeout": 2.0,
            "metadata_cache_ttl": 1.0, "metadata_cache_max_stale": 2.0}
SLACK = 1.5  # merging and serialising on a busy 2-core machine: at most half a deadline more
LISTINGS = ("collections", "processes", "jobs")
MIN_SOAK = scaled(8.0, 120.0)  # seconds of listings at least
MAX_RUN = scaled(60.0, 300.0)  # seconds to see every kind of garbage served to every listing
SMALL_JOB = {"process": {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "bands": ["B04"], "temporal_extent": ["2022-06-01", "2022-06-05"],
        "spatial_extent": {"west": 679720, "east": 680080, "south": 5151560, "north": 5151920, "crs": 32632}}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
             "result": True}}}, "title": "on a healthy backend"}


def bound(settings: AggregatorSettings, path: str) -> float:
    """How long a listing may take: its deadline (GET /jobs: two, one more for further pages) times SLACK."""
    deadline = 2 * settings.jobs_listing_deadline if path == "jobs" else settings.fanout_deadline
    return deadline * SLACK


@dataclass
class Faults:
    url: str
    settings: AggregatorSettings
    headers: dict[str, str]
    direct: dict[str, tuple[str, dict[str, str]]]  # healthy backend id -> (url, the user's headers there)
    garbage: GarbageBackend
    hung: HungApi
    flapping: FakeBackend
    flapper: Flapping
    times: dict[str, list[float]] = field(default_factory=dict)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(f"{self.url}/{path}", headers=self.headers, timeout=60, **kwargs)

    def timed(self, path: str) -> dict:
        started = time.monotonic()
        response = self.get(path)
        elapsed = time.monotonic() - started
        self.times.setdefault(path, []).append(elapsed)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        assert elapsed <= bound(self.settings, path), f"GET /{path} took {elapsed:.2f} s"
        return response.json()

    def status(self, backend_id: str) -> str | None:
        return requests.get(f"{self.url}/", timeout=30).json()["federation"][backend_id].get("status")


def flapping_backend() -> FakeBackend:
    fake = FakeBackend("F")
    fake.documents.update({
        "collections": {"collections": [{"id": "FLAPPING_COLLECTION", "title": "F's", "description": "f",
                                         "license": "proprietary", "links": []}], "links": []},
        "processes": {"processes": [{"id": "flapping_process", "parameters": [], "returns": {}}], "links": []},
        "credentials/basic": {"access_token": "token-of-F", "expires_in": 3600},
        "jobs": {"jobs": [{"id": "flapping-job", "status": "finished", "created": "2031-01-01T00:00:00Z"}],
                 "links": []}})
    return fake


def until(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def faults(live_server, demo_catalog_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("aggregator-faults")
    user = (f"faults-{uuid.uuid4().hex[:8]}", "faults-password")
    link_catalog(base / "b", demo_catalog_dir)
    b = LiveServer(create_app(backend_settings(data_dir=base / "b", backend_id="B",
                                               demo_collections=[DEMO_DEM_COLLECTION])))
    healthy = {"A": live_server, "B": b}
    for server in healthy.values():
        server.services.users.add(*user)
    direct = {backend_id: (server.url, {"Authorization": f"Bearer basic//{server.basic_token(*user)}"})
              for backend_id, server in healthy.items()}
    for backend_id, collection in (("A", DEMO_S2_COLLECTION), ("B", DEMO_DEM_COLLECTION)):
        url, headers = direct[backend_id]
        graph = {"load": {"process_id": "load_collection", "arguments": {"id": collection}, "result": True}}
        job = {"process": {"process_graph": graph}, "title": f"made on {backend_id}"}
        made = requests.post(f"{url}/jobs", json=job, headers=headers, timeout=30)
        assert made.status_code == 201, made.text
    aggregator = None
    with GarbageBackend("G") as garbage, HungApi("H") as hung, flapping_backend() as flapping:
        try:
            backends = {"A": live_server.url, "B": b.url, "F": flapping.url, "G": garbage.url, "H": hung.url}
            aggregator = start_aggregator(base / "aggregator", backends, users=[user], **SETTINGS)
            wait_ready([aggregator])
            settings = load_settings(base / "aggregator.yaml")  # what the aggregator runs with
            url = aggregator.url
            until(lambda: all(s == "online" for s in (requests.get(f"{url}/", timeout=30).json()["federation"][b]
                                                       .get("status") for b in backends)))
            login = requests.get(f"{url}/credentials/basic", auth=user, timeout=60)
            assert login.status_code == 200, login.text
            assert garbage.logins == 1  # G holds a token of the user: GET /jobs asks it too
            headers = {"Authorization": f"Bearer basic//{login.json()['access_token']}"}
            with Flapping(flapping, FLAP_PERIOD) as flapper:
                yield Faults(url, settings, headers, direct, garbage, hung, flapping, flapper)
        finally:
            if aggregator is not None:
                aggregator.stop()
            b.stop()


def expected_collections(faults: Faults) -> dict[str, dict]:
    """Collection id -> (the healthy backends holding it, A's or else B's document)."""
    found: dict[str, dict] = {}
    for backend_id in reversed(HEALTHY):  # A's document wins
        url, _ = faults.direct[backend_id]
        for collection in requests.get(f"{url}/collections", timeout=30).json()["collections"]:
            entry = found.setdefault(collection["id"], {"holders": set()})
            entry["holders"].add(backend_id)
            entry["title"] = collection.get("title")
    return found


def expected_processes(faults: Faults) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for backend_id in HEALTHY:
        url, _ = faults.direct[backend_id]
        for process in requests.get(f"{url}/processes", timeout=30).json()["processes"]:
            found.setdefault(process["id"], set()).add(backend_id)
    return found


def expected_jobs(faults: Faults) -> dict[str, tuple]:
    """Federated id -> (status, title) of the user's jobs on the healthy backends."""
    found = {}
    for backend_id in HEALTHY:
        url, headers = faults.direct[backend_id]
        for job in requests.get(f"{url}/jobs", headers=headers, timeout=30).json()["jobs"]:
            found[ids.encode(backend_id, job["id"])] = (job["status"], job.get("title"))
    return found


class Checker:
    """Checks one listing answer; counts the answers with and without F."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self.collections = expected_collections(faults)
        self.processes = expected_processes(faults)
        self.with_f = self.without_f = 0
        self._lock = threading.Lock()  # checks run in several client threads

    def missing(self, document: dict, f_items: set[str], listed: set[str]) -> None:
        missing = document.get("federation:missing")
        assert isinstance(missing, list) and {"G", "H"} <= set(missing) <= {"F", "G", "H"}, missing
        if "F" in missing:
            assert not listed & f_items, "F is missing, yet its items are listed"
            with self._lock:
                self.without_f += 1
        else:
            assert f_items <= listed, "F is not missing, yet its items are not all listed"
            with self._lock:
                self.with_f += 1

    def check(self, path: str, jobs: dict[str, tuple] | None = None) -> None:
        document = self.faults.timed(path)
        getattr(self, f"_{path}")(document, jobs)

    def _collections(self, document: dict, _) -> None:
        listed = {c["id"]: c for c in document["collections"]}
        self.missing(document, {"FLAPPING_COLLECTION"}, set(listed))
        assert GARBAGE_COLLECTION not in listed
        healthy = {cid: c for cid, c in listed.items() if cid != "FLAPPING_COLLECTION"}
        assert set(healthy) == set(self.collections)
        for cid, collection in healthy.items():
            assert collection["federation:backends"] == sorted(self.collections[cid]["holders"]), cid
            assert collection["title"] == self.collections[cid]["title"], cid
        if "FLAPPING_COLLECTION" in listed:
            assert listed["FLAPPING_COLLECTION"]["federation:backends"] == ["F"]

    def _processes(self, document: dict, _) -> None:
        listed = {p["id"]: p for p in document["processes"]}
        self.missing(document, {"flapping_process"}, set(listed))
        assert GARBAGE_PROCESS not in listed
        healthy = {pid: p for pid, p in listed.items() if pid != "flapping_process"}
        assert set(healthy) == set(self.processes)
        for pid, process in healthy.items():  # offered by some of the five: the holders are named
            assert process["federation:backends"] == sorted(self.processes[pid]), pid

    def _jobs(self, document: dict, jobs: dict[str, tuple]) -> None:
        listed = {j["id"]: j for j in document["jobs"]}
        flapping_job = ids.encode("F", "flapping-job")
        self.missing(document, {flapping_job}, set(listed))
        assert ids.encode("G", GARBAGE_JOB) not in listed
        healthy = {jid: (j["status"], j.get("title")) for jid, j in listed.items() if jid != flapping_job}
        assert healthy == jobs


def test_listings_hold_exactly_the_healthy_backends_items_and_answer_in_time(faults):
    checker = Checker(faults)
    jobs = expected_jobs(faults)
    assert {ids.decode(job_id).backend_id for job_id in jobs} == set(HEALTHY)
    garbage = faults.garbage
    uncovered = {(kind, path) for kind in GARBAGE for path in LISTINGS}
    started = time.monotonic()
    requests_sent = 0
    with ThreadPoolExecutor(len(LISTINGS)) as clients:
        while uncovered or time.monotonic() - started < MIN_SOAK:
            assert time.monotonic() - started < MAX_RUN, f"G never served {sorted(uncovered)}"
            kind = min(uncovered)[0] if uncovered else None
            garbage.kind = kind
            if kind is not None:
                until(lambda: faults.status("G") == "online")  # its circuit closed: the federation asks it again
            before = dict(garbage.served)
            # three clients at once: G is asked by each before the failures open its circuit
            for answer in [clients.submit(checker.check, path, jobs) for path in LISTINGS]:
                answer.result()
            requests_sent += len(LISTINGS)
            uncovered -= {key for key, count in garbage.served.items() if count > before.get(key, 0)}
    assert checker.with_f and checker.without_f, "F's flapping showed in no answer"
    assert faults.hung.held["collections"] and faults.hung.held["jobs"]  # H was asked, and hung
    _report("listings", faults, requests_sent, time.monotonic() - started, checker)


def test_jobs_on_a_healthy_backend_work_while_the_others_misbehave(faults, job_runner):
    faults.garbage.kind = None  # every kind in turn
    created = requests.post(f"{faults.url}/jobs", json=SMALL_JOB, headers=faults.headers, timeout=60)
    assert created.status_code == 201, created.text
    assert created.headers["OpenEO-Federation-Backend"] == "A"
    job_id = created.headers["OpenEO-Identifier"]
    ref = ids.decode(job_id)
    a_url, a_headers = faults.direct["A"]
    own = requests.get(f"{a_url}/jobs/{ref.job_id}", headers=a_headers, timeout=30).json()
    shown = faults.get(f"jobs/{job_id}").json()
    assert (shown["id"], shown["title"], shown["status"], shown["federation:missing"]) == (
        job_id, own["title"], own["status"], [])
    assert shown["process"]["process_graph"] == own["process"]["process_graph"]

    started = requests.post(f"{faults.url}/jobs/{job_id}/results", headers=faults.headers, timeout=60)
    assert started.status_code == 202, started.text
    status = until(lambda: (s := faults.get(f"jobs/{job_id}").json()["status"]) in ("finished", "error") and s,
                   timeout=scaled(180, 300))
    assert status == "finished", faults.get(f"jobs/{job_id}/logs").text

    results = faults.get(f"jobs/{job_id}/results")
    assert results.status_code == 200, results.text
    assets = results.json()["assets"]
    assert results.json()["federation:missing"] == []  # one backend's job: from it, or an error
    own_results = requests.get(f"{a_url}/jobs/{ref.job_id}/results", headers=a_headers, timeout=30).json()
    assert sorted(assets) == sorted(own_results["assets"]) and assets
    first = next(iter(assets.values()))
    download = requests.get(first["href"], timeout=60)
    assert download.status_code == 200 and download.content[:4] in (b"II*\x00", b"MM\x00*")  # a GeoTIFF
    logs = faults.get(f"jobs/{job_id}/logs")
    assert logs.status_code == 200 and isinstance(logs.json()["logs"], list)
    assert logs.json()["federation:missing"] == []

    checker = Checker(faults)
    checker.check("jobs", expected_jobs(faults))  # the listing shows it, as A does, within its bound
    listed = {j["id"]: j for j in faults.get("jobs").json()["jobs"]}
    assert listed[job_id]["status"] == "finished"
    assert faults.flapper.flips > 0


# (method, path under the job): G's garbage must be an error naming G, except for the calls in TOLERANT:
# their answer needs no document (a 200 of G, garbage or not, says it did it) or has no required field.
JOB_CALLS = [("GET", ""), ("GET", "/results"), ("GET", "/logs"), ("POST", "/results"), ("DELETE", "")]
TOLERANT = {("PATCH", ""): 204, ("DELETE", "/results"): 204, ("GET", "/estimate"): 200}


def test_a_job_on_the_garbage_backend_answers_an_openeo_error_naming_it(faults):
    job_id = ids.encode("G", GARBAGE_JOB)
    read = [f"jobs/{GARBAGE_JOB}{path}" for path in ("", "/results", "/logs")]  # G must have answered these
    answers = 0
    with ThreadPoolExecutor(len(JOB_CALLS) + len(TOLERANT)) as clients:
        for kind in GARBAGE:
            faults.garbage.kind = kind
            started = time.monotonic()
            while not all(faults.garbage.served[(kind, path)] for path in read):
                assert time.monotonic() - started < 30, f"G was not asked for {read} while serving {kind}"
                until(lambda: faults.status("G") == "online")  # all calls at once, before its circuit opens
                calls = {(method, path): clients.submit(requests.request, method, f"{faults.url}/jobs/{job_id}{path}",
                                                        headers=faults.headers, json={"title": "t"}, timeout=60)
                         for method, path in [*JOB_CALLS, *TOLERANT]}
                for (method, path), call in calls.items():
                    response = call.result()
                    answers += 1
                    if TOLERANT.get((method, path)) == response.status_code:
                        continue
                    body = response.json()
                    assert response.status_code in (502, 503), (kind, method, path, response.status_code, body)
                    assert body["code"] in ("BackendResponseInvalid", "BackendUnavailable"), (kind, method, path, body)
                    assert body["message"].startswith("Backend 'G' "), (kind, method, path, body)
    print(f"[aggregator faults: garbage job] {answers} answers to {len(JOB_CALLS) + len(TOLERANT)} job calls "
          f"for {len(GARBAGE)} kinds of garbage")


def _report(name: str, faults: Faults, sent: int, seconds: float, checker: Checker) -> None:
    """The figures of the run (pytest -s shows them; the README's table takes them)."""
    lines = [f"[aggregator faults: {name}] {sent} listing requests in {seconds:.1f} s; "
             f"answers with F {checker.with_f}, F missing {checker.without_f}; F flipped {faults.flapper.flips} "
             f"times; G served {sum(faults.garbage.served.values())} garbage answers; H held "
             f"{sum(faults.hung.held.values())} calls"]
    for path, times in faults.times.items():
        lines.append(f"  GET /{path}: n={len(times)} median {statistics.median(times) * 1000:.0f} ms, "
                     f"max {max(times) * 1000:.0f} ms (bound {bound(faults.settings, path) * 1000:.0f} ms)")
    print("\n".join(lines))
