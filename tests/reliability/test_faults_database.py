"""The database unreachable for a while (issue 13): the API answers 503 openEO errors, then recovers by itself.

A real PostgreSQL (tests/support/postgres.py) reached through a TCP proxy on loopback (tests/support/tcp_proxy.py)
that the test cuts: new connections are refused and open ones reset, as when the database host goes away.
During the outage every request that needs the database must answer 503 ``InfrastructureBusy`` with
``Retry-After`` (never 500, never a hang), requests that do not need it go on working, and once the proxy
listens again the same server process (no restart) answers every request as before and no credits were lost.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import pytest
import requests
from sqlalchemy.engine import make_url

from backend.app import create_app
from backend.jobs.runner import JobRunner
from backend.settings import load_settings
from tests.conftest import LiveServer
from tests.reliability.profile import scaled
from tests.reliability.test_isolation import SMALL_JOB
from tests.support.postgres import create_database, drop_database, postgres_url, unique_database_name  # noqa: F401
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres
OUTAGE_SECONDS = scaled(3, 10)
GRAPH = {"process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}}


@pytest.fixture(scope="module")
def proxied(postgres_url, demo_catalog_dir, job_runner):  # noqa: F811
    """The app behind a real HTTP server and a job runner (on the session's Dask cluster), both reaching
    PostgreSQL through the proxy."""
    url = create_database(postgres_url, unique_database_name("faults_database"))
    parsed = make_url(url)
    with TcpProxy(parsed.host, parsed.port) as proxy:
        settings = load_settings(data_dir=demo_catalog_dir.parent, database_url=parsed.set(port=proxy.port)
                                 .render_as_string(hide_password=False), job_lease_seconds=4, job_poll_interval=0.2)
        server = LiveServer(create_app(settings))
        runner = JobRunner(server.services, cluster=job_runner._cluster).start()
        try:
            yield server, proxy
        finally:
            runner.stop()
            server.stop()
            server.services.db.dispose()
    drop_database(url)


def requests_to_send(server: LiveServer, headers: dict) -> list[tuple[str, str, dict, bool]]:
    """(method, url, kwargs, needs the database) of requests a user sends all the time."""
    api = server.url
    return [
        ("GET", api + "/me", {"headers": headers}, True),
        ("GET", api + "/jobs", {"headers": headers}, True),
        ("POST", api + "/jobs", {"headers": headers, "json": GRAPH}, True),
        ("GET", api + "/process_graphs", {"headers": headers}, True),
        ("GET", api + "/files", {"headers": headers}, True),
        ("GET", api + "/services", {"headers": headers}, True),
        ("POST", api + "/result", {"headers": headers, "json": GRAPH}, True),
        ("GET", server.root + "/health", {}, True),
        ("GET", api + "/collections", {}, False),
        ("GET", api + "/processes", {}, False),
        ("GET", api + "/", {}, False),
    ]


def send(method: str, url: str, kwargs: dict) -> requests.Response:
    return requests.request(method, url, timeout=30, **kwargs)


def test_database_outage_answers_503_then_recovers_without_a_restart(proxied, caplog):
    server, proxy = proxied
    name, password = server.new_user()
    headers = {"Authorization": f"Bearer basic//{server.basic_token(name, password)}"}
    batch = requests_to_send(server, headers)
    for method, url, kwargs, _ in batch:  # all fine before, and the pool holds open connections
        assert send(method, url, kwargs).status_code in (200, 201), (method, url)
    balance = send("GET", server.url + "/me", {"headers": headers}).json()["budget"]
    assert balance < 1000  # the sync request was charged

    job = send("POST", server.url + "/jobs", {"headers": headers, "json": SMALL_JOB})
    job_id = job.headers["OpenEO-Identifier"]
    assert send("POST", f"{server.url}/jobs/{job_id}/results", {"headers": headers}).status_code == 202

    caplog.set_level(logging.WARNING, logger="backend.jobs.runner")
    proxy.cut()  # the job is queued or running on the runner now
    answers: Counter = Counter()
    wrong: list[str] = []
    slowest = 0.0
    outage_ends = time.monotonic() + OUTAGE_SECONDS
    while time.monotonic() < outage_ends:
        for method, url, kwargs, needs_db in batch:
            began = time.monotonic()
            response = send(method, url, kwargs)
            slowest = max(slowest, time.monotonic() - began)
            answers[response.status_code] += 1
            if not needs_db:
                if response.status_code != 200:
                    wrong.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
                continue
            body = response.json()
            if url.endswith("/health"):
                ok = response.status_code == 503 and body["database"] == "unreachable"
            else:
                ok = (response.status_code == 503 and body["code"] == "InfrastructureBusy"
                      and "database cannot be reached" in body["message"] and body["id"]
                      and response.headers.get("Retry-After") == "5")
            if not ok:
                wrong.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
    proxy.restore()
    runner_records = [r for r in caplog.records if r.name == "backend.jobs.runner"]
    # the job runner says once that the database is gone, without a traceback per poll
    assert len([r for r in runner_records if "database cannot be reached" in r.getMessage()]) == 1
    assert not [r for r in runner_records if r.exc_info], [r.getMessage() for r in runner_records]
    print(f"\noutage {OUTAGE_SECONDS} s: {sum(answers.values())} requests, statuses {dict(answers)}, "
          f"slowest answer {slowest:.2f} s, connections reset {proxy.connections_cut}")
    assert wrong == []
    assert answers[503] > 0 and slowest < 5

    # the same server process, no restart: every request works again, in the first round already
    for method, url, kwargs, _ in batch:
        response = send(method, url, kwargs)
        assert response.status_code in (200, 201), (method, url, response.text[:300])
    # the job runner recovered by itself too: the job started before the outage finishes
    deadline = time.monotonic() + 120
    while (status := send("GET", f"{server.url}/jobs/{job_id}", {"headers": headers}).json())["status"] not in (
            "finished", "error") and time.monotonic() < deadline:
        time.sleep(0.3)
    logs = send("GET", f"{server.url}/jobs/{job_id}/logs", {"headers": headers}).json()["logs"]
    assert status["status"] == "finished", logs
    # the outage neither charged nor lost credits: the two successful sync requests and the job cost something
    after = send("GET", server.url + "/me", {"headers": headers}).json()["budget"]
    assert after == pytest.approx(1000 - 2 * (1000 - balance) - status["costs"], abs=1e-3)
    ledger = server.services.ledger
    user_id = send("GET", server.url + "/me", {"headers": headers}).json()["user_id"]
    holds = [e for e in ledger.entries(user_id) if e.kind == "hold"]
    assert all(ledger.held(e.ref) == 0 for e in holds), "a hold stayed in place after the outage"
