"""kill -9 of a Dask worker, the job runner and the API server while batch jobs run (issue 13).

One real `openeo-backend serve` (gunicorn with 2 web workers, its job runner, a Dask LocalCluster; SQLite) and
``JOBS`` jobs of two users, half of them running at once (``job_slots``), the rest queued. While they run: SIGKILL
a Dask worker process (its nanny starts another, the tasks run again), then the job runner (serve starts another;
the leases expire, the jobs are queued again and run as attempt 2), then, while those run, the gunicorn arbiter
alone: its web workers, runner and Dask workers must go by themselves (the orphaned runner gives its jobs back to
the queue) and none may survive; then `serve` starts again on the same data. Afterwards:
- every job is `finished`, or `error` with a log entry that explains it (``RunnerLost``): none stays queued or
  running, and each job the killed runner ran says so in a warning;
- credits: every job's hold is settled exactly once — a finished job charged its `costs`, an errored one released
  in full —, nothing stays held, and each balance is its grants minus its charges and the sum of its entries;
- results: while unfinished, no job lists results (sampled all along); afterwards a finished job lists exactly
  the files of its one published run (downloaded: sizes and checksums match) and no file of the killed attempts
  is left on disk; an errored job has no results and no files.
First: kill -9 of the web worker serving a request (what an out-of-memory kill does) fails only that request;
requests on the other worker go on, gunicorn replaces the worker, and the credits the request held come back
(released as abandoned, checked at the end of the second test, which outlasts the hold lifetime).
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
import requests

from backend.accounting.ledger import Ledger
from backend.demo import DEMO_S2_COLLECTION
from backend.storage.db import Database
from backend.storage.models import Job
from tests.e2e.test_cli import free_port
from tests.reliability.profile import scaled
from tests.reliability.serve_process import API, ServeProcess, prepare_data_dir

pytestmark = pytest.mark.slow
JOBS = scaled(8, 20)
USERS = ["kim", "lee"]
OOM_USER = "oom"
PASSWORD = "pw"
SYNC_TIMEOUT = 8  # also the UDF and tile timeouts: request holds older than 2 × 8 + 10 s count as abandoned
ENV = {"OPENEO_BACKEND_JOB_LEASE_SECONDS": "4", "OPENEO_BACKEND_JOB_MAX_ATTEMPTS": "2",
       "OPENEO_BACKEND_JOB_SLOTS": str(JOBS // 2), "OPENEO_BACKEND_JOB_MAX_RUNNING_PER_USER": str(JOBS),
       "OPENEO_BACKEND_JOB_POLL_INTERVAL": "0.5", "OPENEO_BACKEND_WORKERS": "2",
       "OPENEO_BACKEND_DASK_WORKERS": "2", "OPENEO_BACKEND_DASK_MEMORY_LIMIT": "1GiB",
       "OPENEO_BACKEND_SYNC_TIMEOUT": str(SYNC_TIMEOUT), "OPENEO_BACKEND_TILE_TIMEOUT": str(SYNC_TIMEOUT),
       "OPENEO_BACKEND_UDF_TIMEOUT": str(SYNC_TIMEOUT), "OPENEO_BACKEND_ACCESS_LOG": "false"}
# 320 x 320 px of one band on the summer's dates: a few seconds per job when the jobs share the 2 cores.
EXTENT = {"west": 675000, "south": 5145000, "east": 678200, "north": 5148200, "crs": 32632}


def job_body(index: int) -> dict:
    return {"title": f"fault job {index}", "process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": DEMO_S2_COLLECTION, "bands": ["B04"], "spatial_extent": EXTENT,
            "temporal_extent": ["2022-06-01", "2022-09-01"]}},
        "save": {"process_id": "save_result", "arguments": {
            "data": {"from_node": "load"}, "format": "GTiff", "options": {"overviews": False}}, "result": True}}}}


class Client:
    def __init__(self, server: ServeProcess, name: str):
        self.server, self.name = server, name
        self.connect()

    def connect(self) -> None:
        basic = base64.b64encode(f"{self.name}:{PASSWORD}".encode()).decode()
        token = requests.get(self.server.url + "/credentials/basic", headers={"Authorization": f"Basic {basic}"},
                             timeout=30).json()["access_token"]
        self.headers = {"Authorization": f"Bearer basic//{token}"}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.server.url + path, headers=self.headers, timeout=60, **kwargs)


def statuses(clients: list[Client], jobs: dict[str, Client]) -> dict[str, str]:
    found = {}
    for client in clients:
        for job in client.request("GET", "/jobs").json()["jobs"]:
            if job["id"] in jobs:
                found[job["id"]] = job["status"]
    return found


def wait_for(clients, jobs, predicate, what: str, timeout: float, seen_results: Counter) -> dict[str, str]:
    """Poll the job statuses until ``predicate(statuses)``; meanwhile no unfinished job may list results."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now = statuses(clients, jobs)
        except requests.RequestException:  # the server is restarting
            time.sleep(0.5)
            continue
        unfinished = sorted(job_id for job_id, status in now.items() if status != "finished")
        for job_id in random.sample(unfinished, min(3, len(unfinished))):  # a few per round: the CPU is for jobs
            answer = jobs[job_id].request("GET", f"/jobs/{job_id}/results")
            seen_results["unfinished results checked"] += 1
            if answer.status_code == 200:  # finished meanwhile?
                status = jobs[job_id].request("GET", f"/jobs/{job_id}").json()["status"]
                assert status == "finished", f"{job_id} ({status}) lists results: {answer.text[:300]}"
            else:
                assert answer.status_code in (400, 424), answer.text[:300]
        if predicate(now):
            return now
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {Counter(statuses(clients, jobs).values())}")


def started_again(client: Client, job_id: str) -> bool:
    entries = client.request("GET", f"/jobs/{job_id}/logs").json()["logs"]
    return any("(attempt 2)" in entry["message"] for entry in entries)


def running(count: int):
    return lambda now: sum(status == "running" for status in now.values()) >= count


@pytest.fixture(scope="module")
def serve(tmp_path_factory, demo_catalog_dir):
    """One `serve` for the module (the kill test replaces it with a restarted one: a holder)."""
    tmp_path = tmp_path_factory.mktemp("faults-serve")
    data_dir = tmp_path / "data"
    prepare_data_dir(data_dir, demo_catalog_dir, USERS + [OOM_USER], PASSWORD)
    holder = {"data_dir": data_dir, "log": tmp_path / "serve.log", "port": free_port(), "tmp": tmp_path}
    holder["server"] = ServeProcess(data_dir, holder["port"], ENV, holder["log"])
    yield holder
    holder["server"].stop()


SLOW_UDF = """
import time
import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    time.sleep(5)
    return cube
"""
SLOW_REQUEST = {"process": {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "bands": ["B04"], "temporal_extent": ["2022-06-01", "2022-06-05"],
        "spatial_extent": {"west": 679720, "east": 680080, "south": 5151560, "north": 5151920, "crs": 32632}}},
    "udf": {"process_id": "apply", "arguments": {"data": {"from_node": "load"}, "process": {"process_graph": {
        "run": {"process_id": "run_udf", "arguments": {"data": {"from_parameter": "x"}, "udf": SLOW_UDF,
                                                       "runtime": "Python"}, "result": True}}}}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "udf"}, "format": "GTiff"},
             "result": True}}}}
QUICK_REQUESTS = [("GET", "/me", None), ("GET", "/collections", None), ("GET", "/jobs", None),
                  ("POST", "/result", {"process": {"process_graph": {
                      "a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}})]


def worker_of(server: ServeProcess, connection: http.client.HTTPConnection, timeout: float = 5) -> int:
    """The web worker that accepted this client connection (its socket's peer is our local port)."""
    local_port = connection.sock.getsockname()[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in server.web_workers():
            try:
                peers = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.Error:
                continue
            if any(c.raddr and c.raddr.port == local_port and c.laddr.port == server.port for c in peers):
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no web worker holds the connection from port {local_port}")


def exchange(connection: http.client.HTTPConnection, headers: dict, method: str, path: str, body=None) -> int:
    payload = None if body is None else json.dumps(body)
    connection.request(method, API + path, body=payload,
                       headers={**headers, **({"Content-Type": "application/json"} if body else {})})
    response = connection.getresponse()
    response.read()
    return response.status


def test_a_killed_web_worker_fails_only_its_own_request(serve):
    server = serve["server"]
    client = Client(server, OOM_USER)
    workers = server.web_workers()
    assert len(workers) == 2
    # keep-alive connections, each held by one worker
    by_worker: dict[int, list[http.client.HTTPConnection]] = {pid: [] for pid in workers}
    for _ in range(40):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.connect()
        by_worker[worker_of(server, connection)].append(connection)
        if all(len(held) >= 2 for held in by_worker.values()):
            break
    victim, survivor = sorted(by_worker, key=lambda pid: -len(by_worker[pid]))
    slow, others = by_worker[victim][0], by_worker[survivor]
    assert others, "every connection went to one worker"

    outcome: dict[str, object] = {}

    def slow_request():
        try:
            outcome["slow"] = exchange(slow, client.headers, "POST", "/result", SLOW_REQUEST)
        except (OSError, http.client.HTTPException) as exc:
            outcome["slow"] = exc

    statuses: Counter = Counter()
    stop = threading.Event()

    def traffic(connection):
        while not stop.is_set():
            for method, path, body in QUICK_REQUESTS:
                statuses[exchange(connection, client.headers, method, path, body)] += 1

    threads = [threading.Thread(target=slow_request)] + [threading.Thread(target=traffic, args=(c,)) for c in others]
    for thread in threads:
        thread.start()
    time.sleep(2)  # the slow request is inside its UDF now (it sleeps 5 s)
    assert "slow" not in outcome, f"the slow request ended early: {outcome}"
    psutil.Process(victim).kill()  # what the kernel's out-of-memory killer does
    threads[0].join(30)
    time.sleep(1)
    stop.set()
    for thread in threads[1:]:
        thread.join(30)

    assert isinstance(outcome["slow"], (ConnectionError, http.client.RemoteDisconnected)), outcome
    assert set(statuses) == {200} and sum(statuses.values()) > 0, statuses
    # gunicorn replaces the worker; new connections are served by both workers again
    deadline = time.monotonic() + 30
    while len(server.web_workers() - {victim}) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(server.web_workers() - {victim}) == 2
    fresh = Counter(client.request("GET", "/me").status_code for _ in range(20))
    assert fresh == {200: 20}, fresh
    serve["oom"] = {"traffic": sum(statuses.values()), "slow": repr(outcome["slow"])}
    print(f"\nweb worker {victim} killed during a slow request: that request -> {outcome['slow']!r}; "
          f"{sum(statuses.values())} requests on the other worker meanwhile, all 200; worker replaced")
    # the credits the killed request held: released by the runner once no request can still run (see
    # check_ledger in the next test, which runs longer than request_hold_lifetime)


def test_kill_9_of_dask_worker_runner_and_server_while_jobs_run(serve):
    data_dir, tmp_path, server = serve["data_dir"], serve["tmp"], serve["server"]
    began = time.monotonic()
    clients = [Client(server, name) for name in USERS]
    figures = Counter()
    jobs: dict[str, Client] = {}
    for index in range(JOBS):
        client = clients[index % len(clients)]
        created = client.request("POST", "/jobs", json=job_body(index))
        jobs[created.headers["OpenEO-Identifier"]] = client
    for job_id, client in jobs.items():
        assert client.request("POST", f"/jobs/{job_id}/results").status_code == 202

    phases = {"submitted": time.monotonic() - began}
    # 1. a Dask worker process dies: the cluster's nanny restarts it, its tasks run again elsewhere
    wait_for(clients, jobs, running(max(2, JOBS // 2)), "running jobs", 120, figures)
    dask_worker = sorted(server.dask_workers())[0]
    psutil.Process(dask_worker).kill()
    phases["dask worker killed"] = time.monotonic() - began
    time.sleep(1)

    # 2. the job runner dies: serve starts another; the leases expire and the jobs run again (attempt 2)
    runner = server.runner()
    psutil.Process(runner).kill()
    now = statuses(clients, jobs)
    running_at_runner_kill = {job_id for job_id, status in now.items() if status == "running"}
    assert running_at_runner_kill
    wait_for(clients, jobs, lambda now: any(started_again(jobs[j], j) for j in running_at_runner_kill),
             "jobs running again on a new runner", 120, figures)
    assert server.runner() != runner
    phases["runner killed, jobs running again"] = time.monotonic() - began

    # 3. the API server (gunicorn's arbiter) dies alone: its web workers, runner and Dask workers follow
    server.kill_server_only()
    left = server.survivors(timeout=20)
    assert left == [], f"processes of the killed server still running: {left}"
    phases["server killed, its processes gone"] = time.monotonic() - began
    server = serve["server"] = ServeProcess(data_dir, serve["port"], ENV, serve["log"])
    for client in clients:
        client.server = server
        client.connect()
    phases["server restarted"] = time.monotonic() - began
    final = wait_for(clients, jobs, lambda now: all(s in ("finished", "error") for s in now.values()),
                     "every job to end", 240, figures)
    figures.update(final.values())
    phases["every job ended"] = elapsed = time.monotonic() - began
    check_logs(jobs, final)
    for job_id in running_at_runner_kill:  # each job the killed runner ran says so
        warnings = jobs[job_id].request("GET", f"/jobs/{job_id}/logs?level=warning").json()["logs"]
        assert any("stopped responding" in entry["message"] for entry in warnings), warnings
    check_results(jobs, final, data_dir, tmp_path)
    check_ledger(data_dir, jobs, final, abandoned="oom" in serve)
    print(f"\n{JOBS} jobs, killed Dask worker {dask_worker}, runner {runner}, arbiter; "
          f"{len(running_at_runner_kill)} running at the runner's kill; outcome {dict(figures)}; {elapsed:.0f} s; "
          f"phases (s since start): {', '.join(f'{k} {v:.0f}' for k, v in phases.items())}")
    assert "finished" in final.values()


def check_logs(jobs: dict[str, Client], final: dict[str, str]) -> None:
    for job_id, status in final.items():
        if status == "error":
            entries = jobs[job_id].request("GET", f"/jobs/{job_id}/logs?level=error").json()["logs"]
            assert entries and entries[-1]["code"] == "RunnerLost", entries
            assert "stopped responding" in entries[-1]["message"] and "Start it again" in entries[-1]["message"]


def check_results(jobs: dict[str, Client], final: dict[str, str], data_dir: Path, tmp_path: Path) -> None:
    results_dir = data_dir / "jobs"
    for job_id, status in final.items():
        client = jobs[job_id]
        answer = client.request("GET", f"/jobs/{job_id}/results")
        on_disk = sorted(p.name for p in (results_dir / job_id).iterdir()) if (results_dir / job_id).exists() else []
        if status == "error":
            assert answer.status_code == 424 and "stopped responding" in answer.json()["message"], answer.text
            assert on_disk == [], f"files of the failed job {job_id} were left behind: {on_disk}"
            continue
        assets = answer.json()["assets"]
        assert any(name.endswith(".tif") for name in assets), assets
        for name, asset in assets.items():
            content = requests.get(asset["href"], timeout=60).content
            assert len(content) == asset["file:size"]
            assert asset["file:checksum"] == "1220" + hashlib.sha256(content).hexdigest()
        assert len(on_disk) == 1, f"runs of killed attempts of {job_id} left behind: {on_disk}"
        assert sorted(p.name for p in (results_dir / job_id / on_disk[0]).iterdir()) == sorted(assets)


def check_ledger(data_dir: Path, jobs: dict[str, Client], final: dict[str, str], abandoned: bool) -> None:
    """``abandoned``: a web worker was killed during a request (the previous test): its hold was released."""
    db = Database(f"sqlite:///{data_dir / 'backend.db'}")
    try:
        ledger = Ledger(db)
        # the hold of the request whose web worker was killed (previous test) comes back once no request can
        # still be running (request_hold_lifetime: 2 × 8 + 10 s)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and [e for e in ledger.entries() if e.kind == "hold"
                                               and e.ref.startswith("sync-") and ledger.held(e.ref)]:
            time.sleep(1)
        with db.session() as session:
            rows = {job.job_id: (job.user_id, job.billing_ref, job.costs) for job in session.query(Job)}
        by_user: dict[str, list] = {}
        for entry in ledger.entries():
            by_user.setdefault(entry.user_id, []).append(entry)
        for user_id, entries in by_user.items():
            balance = ledger.balance(user_id)
            assert balance == pytest.approx(ledger.sum_of_entries(user_id), abs=1e-9)
            refs = Counter((e.ref, e.kind) for e in entries)
            assert max(refs.values()) == 1, "an entry twice for one ref"
            holds = {e.ref for e in entries if e.kind == "hold"}
            assert all(ledger.held(ref) == 0 for ref in holds), "credits still held after every job ended"
            grants = sum(e.amount for e in entries if e.kind == "grant")
            charges = sum(e.amount for e in entries if e.kind == "charge")
            assert balance == pytest.approx(grants + charges, abs=1e-9)
        released = [e for e in ledger.entries() if e.kind == "release" and "ended without settling" in (e.note or "")]
        assert len(released) == (1 if abandoned else 0), released
        for job_id, status in final.items():
            user_id, ref, costs = rows[job_id]
            kinds = Counter(e.kind for e in by_user[user_id] if e.ref == ref)
            if status == "finished":
                assert kinds == {"hold": 1, "release": 1, "charge": 1}
                assert ledger.charged(ref) == pytest.approx(costs, abs=1e-3) and costs > 0
            else:
                assert kinds == {"hold": 1, "release": 1} and ledger.charged(ref) == 0
    finally:
        db.dispose()
