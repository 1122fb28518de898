"""kill -9 of `openeo-aggregator serve` (its gunicorn arbiter and web workers) while federated batch jobs run
(issue 13; the backend's twin is test_faults_kill.py).

Two real `openeo-backend serve` (A: Sentinel-2, DEM, which runs the jobs; B: Sentinel-1, DEM; each with its
job runner on a Dask LocalCluster) and `openeo-aggregator serve` in front (2 web workers, SQLite). A user submits
``JOBS`` small batch jobs through the aggregator and starts them. While they run, SIGKILL goes to the
aggregator's gunicorn arbiter alone (its web workers must exit by themselves; none may survive); it starts again
on the same data dir, config file and port, and the user's token of before still works. Once a job has finished
and been charged, SIGKILL goes to the whole process group (arbiter and workers at once) and it starts again. The
backend runs the jobs meanwhile. Afterwards, through the restarted aggregator:
- every job is `finished`, or `error` with a log entry that explains it; none stays queued or running; the
  listing agrees;
- every finished job's results download through the aggregator (sizes and checksums as listed), and every
  job's raster equals the others' (the same graph);
- the federation ledger charges each job once: one ref ``fed-job:A:<federated id>#<run>`` with one hold, its
  release and one charge equal to the job's ``costs`` (a job charged before the second kill is not charged
  again); no hold is left; the balance is the sum of the entries.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections import Counter

import psutil
import pytest
import requests

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from tests.reliability import load_driver as load
from tests.reliability.load_servers import USER, ledger_by_ref, serve_aggregator, serve_backends, token_headers
from tests.reliability.profile import scaled
from tests.reliability.test_faults_kill import job_body
from tests.support.federation import ServerProcess, start_aggregator, stop_all, wait_ready

pytestmark = pytest.mark.slow
JOBS = scaled(4, 12)
TIMEOUT = 60


@pytest.fixture(scope="module")
def federation(tmp_path_factory, demo_catalog_dir):
    """Backends A (runs the jobs: only it has Sentinel-2) and B (a federation needs two), the aggregator in
    front (a holder: the kill test replaces the aggregator)."""
    base = tmp_path_factory.mktemp("faults-aggregator-kill")
    started: list[ServerProcess] = []
    holder = {"base": base, "started": started}
    try:
        backends = serve_backends(demo_catalog_dir, {
            "A": (base / "a", [DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION], {"job_slots": JOBS}),
            "B": (base / "b", [DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION], {"workers": 1, "dask_workers": 1})})
        started.extend(backends.values())
        holder["backends"] = {b: server.url for b, server in backends.items()}
        holder["aggregator"] = serve_aggregator(base / "aggregator", holder["backends"])
        started.append(holder["aggregator"])
        yield holder
    finally:
        stop_all(started)


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def kill_9(server: ServerProcess, arbiter_only: bool = False) -> tuple[list[str], float]:
    """SIGKILL to the aggregator's process group (arbiter and workers at once), or to its gunicorn arbiter
    alone (its web workers must notice and exit: gunicorn's workers check their parent about once a second,
    slower on a busy machine); the processes left after 30 s, and the seconds until all were gone."""
    tree = process_tree(server.pid)
    assert len(tree) >= 3, f"expected the arbiter and 2 web workers: {[p.pid for p in tree]}"
    if arbiter_only:
        os.kill(server.pid, signal.SIGKILL)
    else:
        os.killpg(server.pid, signal.SIGKILL)
    server.process.wait(10)
    killed = time.monotonic()
    gone, alive = psutil.wait_procs(tree, timeout=30)
    return [f"{p.pid}" for p in alive if p.status() != psutil.STATUS_ZOMBIE], time.monotonic() - killed


def restart(holder: dict) -> ServerProcess:
    """`openeo-aggregator serve` again on the same data dir, config (rewritten the same) and port."""
    old: ServerProcess = holder["aggregator"]
    server = start_aggregator(old.data_dir, holder["backends"], users=[USER], workers=2, port=old.port)
    holder["started"].append(server)
    wait_ready([server])
    holder["aggregator"] = server
    return server


def kill_and_restart(holder: dict, headers: dict, arbiter_only: bool = False) -> ServerProcess:
    server = holder["aggregator"]
    left, seconds = kill_9(server, arbiter_only)
    assert left == [], f"processes of the killed aggregator still running: {left}"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/jobs", headers=headers, timeout=5)
    holder.setdefault("exits", []).append(round(seconds, 1))
    return restart(holder)


def statuses(url: str, headers: dict, jobs: list[str]) -> dict[str, str]:
    found = {}
    for job_id in jobs:
        answer = requests.get(f"{url}/jobs/{job_id}", headers=headers, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text[:300]
        found[job_id] = answer.json()["status"]
    return found


def wait_for(url, headers, jobs, predicate, what: str, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        now = statuses(url, headers, jobs)
        if predicate(now):
            return now
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {Counter(now.values())}"
        time.sleep(0.5)


def test_kill_9_of_the_aggregator_while_federated_jobs_run(federation):
    began = time.monotonic()
    server: ServerProcess = federation["aggregator"]
    headers = token_headers(server.url)
    jobs: list[str] = []
    for index in range(JOBS):
        created = requests.post(f"{server.url}/jobs", json=job_body(index), headers=headers, timeout=TIMEOUT)
        assert created.status_code == 201, created.text[:300]
        jobs.append(created.headers["OpenEO-Identifier"])
    for job_id in jobs:
        started = requests.post(f"{server.url}/jobs/{job_id}/results", headers=headers, timeout=TIMEOUT)
        assert started.status_code == 202, started.text[:300]
    phases = {"submitted": time.monotonic() - began}

    at_kill = wait_for(server.url, headers, jobs, lambda now: "running" in now.values(), "a running job", 120)
    server = kill_and_restart(federation, headers, arbiter_only=True)
    phases["arbiter killed while jobs ran, restarted"] = time.monotonic() - began
    # the user's token of before the kill still works (the restarted aggregator reads the same data dir); once a
    # job has finished and been charged (the look charges it), kill again: the charge must not be repeated
    at_second_kill = wait_for(server.url, headers, jobs, lambda now: "finished" in now.values(), "a finished job",
                              240)
    user_id = requests.get(f"{server.url}/me", headers=headers, timeout=TIMEOUT).json()["user_id"]
    before = ledger_by_ref(server.data_dir / "aggregator.db", user_id)
    charged_before = [j for j, s in at_second_kill.items() if s == "finished"
                      and any(ref.startswith(f"fed-job:A:{j}#") and "charge" in kinds for ref, kinds in before.items())]
    assert charged_before, f"no finished job charged before the second kill: {sorted(before)}"
    server = kill_and_restart(federation, headers)
    phases["killed after a charge, restarted"] = time.monotonic() - began
    final = wait_for(server.url, headers, jobs, lambda now: all(s in ("finished", "error") for s in now.values()),
                     "every job to end", 240)
    phases["every job ended"] = elapsed = time.monotonic() - began
    listed = {job["id"]: job["status"] for job in requests.get(
        f"{server.url}/jobs", headers=headers, timeout=TIMEOUT).json()["jobs"]}
    assert {job_id: listed.get(job_id) for job_id in jobs} == final

    documents = {job_id: requests.get(f"{server.url}/jobs/{job_id}", headers=headers, timeout=TIMEOUT).json()
                 for job_id in jobs}
    check_errors_explained(server.url, headers, final)
    downloads = check_results(server.url, headers, final)
    check_ledger(server, headers, documents, final)
    print(f"\n{JOBS} jobs through the aggregator, at its first kill {dict(Counter(at_kill.values()))}, at its "
          f"second {dict(Counter(at_second_kill.values()))} ({len(charged_before)} charged); its processes gone "
          f"after {federation['exits']} s; outcome "
          f"{dict(Counter(final.values()))}; {downloads} assets downloaded; {elapsed:.0f} s; phases (s since "
          f"start): {', '.join(f'{k} {v:.0f}' for k, v in phases.items())}")
    assert "finished" in final.values()


def check_errors_explained(url: str, headers: dict, final: dict[str, str]) -> None:
    for job_id, status in final.items():
        if status == "error":
            entries = requests.get(f"{url}/jobs/{job_id}/logs?level=error", headers=headers,
                                   timeout=TIMEOUT).json()["logs"]
            assert entries and entries[-1]["message"], f"{job_id} failed without an explanation: {entries}"


def check_results(url: str, headers: dict, final: dict[str, str]) -> int:
    """Each finished job's assets, downloaded through the aggregator, are as listed; the rasters are equal."""
    downloads, rasters = 0, []
    for job_id, status in final.items():
        answer = requests.get(f"{url}/jobs/{job_id}/results", headers=headers, timeout=TIMEOUT)
        if status != "finished":
            assert answer.status_code in (400, 424), answer.text[:300]
            continue
        assert answer.status_code == 200, answer.text[:300]
        assets = answer.json()["assets"]
        assert any(name.endswith(".tif") for name in assets), assets
        for name, asset in assets.items():
            content = requests.get(asset["href"], timeout=TIMEOUT)
            assert content.status_code == 200, f"{job_id}/{name}: {content.status_code} {content.text[:200]}"
            downloads += 1
            if "file:size" in asset:
                assert len(content.content) == asset["file:size"], f"{job_id}/{name}"
            if "file:checksum" in asset:
                assert asset["file:checksum"] == "1220" + hashlib.sha256(content.content).hexdigest()
            if name.endswith(".tif"):
                rasters.append(load.decode("image/tiff", content.content))
    assert rasters and all(load.same(rasters[0], other) for other in rasters[1:]), "the jobs' rasters differ"
    assert load.informative(rasters[0])
    return downloads


def check_ledger(server: ServerProcess, headers: dict, documents: dict[str, dict], final: dict[str, str]) -> None:
    """Each job charged once (its ``costs``), no hold left, the balance the sum of the entries."""
    user_id = requests.get(f"{server.url}/me", headers=headers, timeout=TIMEOUT).json()["user_id"]
    entries = ledger_by_ref(server.data_dir / "aggregator.db", user_id)
    findings = []
    for job_id, document in documents.items():
        prefix = f"fed-job:A:{job_id}#"
        if final[job_id] == "finished" or document.get("costs"):
            findings.append(load.charged_once(entries, prefix, float(document["costs"])))
        else:
            findings.append(None if not any(ref.startswith(prefix) for ref in entries) else f"{prefix} charged")
    assert [f for f in findings if f] == []
    for ref, kinds in entries.items():  # no hold without its release (a lost hold)
        if "hold" in kinds:
            assert sum(kinds["hold"]) == -sum(kinds.get("release", [])), f"{ref}: {dict(kinds)}"
    assert entries["(balance)"]["account"] == pytest.approx(entries["(balance)"]["entries"], abs=1e-9)
