"""The admin API and the CLI on a running aggregator (gunicorn, 2 workers) in front of two real backends:
only admins may use it; a registered backend is active in every worker within seconds, without a restart;
a removed one is gone and kept as departed; the usage report answers per backend."""

from __future__ import annotations

import time

import pytest
import requests
from click.testing import CliRunner

from aggregator.cli import main as cli
from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from tests.aggregator.onboarding.conftest import ADMIN, USER, bearer
from tests.support.federation import start_aggregator, start_backend, wait_ready
from tests.support.fake_backends import RefusingPort

FAST = {"health_interval": 1.0, "health_recheck": 0.5, "health_timeout": 2.0, "fanout_deadline": 2.0,
        "metadata_timeout": 3.0, "registry_poll_interval": 0.5, "metadata_cache_ttl": 0.5}


@pytest.fixture(scope="module")
def aggregator(demo_catalog_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("admin")
    users = [USER, ADMIN]
    a = start_backend(base / "a", "A", [DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION], catalog=demo_catalog_dir, users=users)
    b = start_backend(base / "b", "B", [DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION], catalog=demo_catalog_dir, users=users)
    server = None
    try:
        wait_ready([a, b])
        server = start_aggregator(base / "aggregator", {"A": a.url, "B": b.url}, users=users, workers=2,
                                  admins=[ADMIN[0]], **FAST)
        wait_ready([server])
        yield server
    finally:
        for process in (server, a, b):
            if process is not None:
                process.stop()


@pytest.fixture(scope="module")
def admin(aggregator) -> dict:
    return bearer(aggregator.url, ADMIN)


def federation_ids(aggregator) -> set[str]:
    return set(requests.get(aggregator.url + "/", timeout=10, headers={"Connection": "close"}).json()["federation"])


def in_every_worker(aggregator, predicate, timeout: float = 15.0, streak: int = 12) -> bool:
    """``predicate`` holds for ``streak`` answers in a row (new connections: both workers answer)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = seen + 1 if predicate() else 0
        if seen >= streak:
            return True
        time.sleep(0.05)
    return False


def test_only_admins_may_use_the_admin_api(aggregator):
    url = aggregator.url
    anonymous = requests.get(f"{url}/federation/backends", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "AuthenticationRequired"
    user = bearer(url, USER)
    for method, path in (("GET", "/federation/backends"), ("POST", "/federation/backends"),
                         ("DELETE", "/federation/backends/A"), ("POST", "/federation/backends/A/check"),
                         ("GET", "/federation/usage")):
        answer = requests.request(method, url + path, headers=user, json={}, timeout=10)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["code"] == "PermissionsInsufficient"
        assert answer.json()["message"].startswith(f"User '{USER[0]}' is not an administrator of this federation")
    assert federation_ids(aggregator) == {"A", "B"}


def test_register_and_remove_a_backend_without_restart(aggregator, admin, partner):
    url = aggregator.url
    with RefusingPort() as port:
        refused = requests.post(f"{url}/federation/backends", headers=admin, timeout=60,
                                json={"id": "dead", "url": port.url})
    assert refused.status_code == 409 and refused.json()["code"] == "SelfCheckFailed"
    assert refused.json()["message"].startswith("backend 'dead' was not registered: the self-check of "
                                                f"{port.url} failed (well_known: GET ")
    failed = [c["name"] for c in refused.json()["self_check"]["checks"] if c["status"] == "failed"]
    assert failed == ["well_known", "api_version", "health", "collections", "processes", "file_formats", "cors"]

    added = requests.post(f"{url}/federation/backends", headers=admin, timeout=120,
                          json={"id": "C", "url": partner.url, "title": "Partner C",
                                "credentials": {"username": USER[0], "password": USER[1]}})
    assert added.status_code == 201, added.text
    assert added.headers["Location"] == f"{url}/federation/backends/C"
    assert added.json()["self_check"]["passed"] is True
    assert {c["name"]: c["status"] for c in added.json()["self_check"]["checks"]}["sync_result"] == "passed"
    assert added.json()["backend"]["origin"] == "registered" and added.json()["backend"]["title"] == "Partner C"

    assert in_every_worker(aggregator, lambda: federation_ids(aggregator) == {"A", "B", "C"})

    def dem_on_c() -> bool:
        document = requests.get(f"{url}/collections/{DEMO_DEM_COLLECTION}", timeout=10,
                                headers={"Connection": "close"}).json()
        return document.get("federation:backends") == ["A", "B", "C"]
    assert in_every_worker(aggregator, dem_on_c)

    again = requests.post(f"{url}/federation/backends", headers=admin, json={"id": "C", "url": partner.url}, timeout=30)
    assert again.status_code == 409 and again.json()["code"] == "BackendExists"
    listed = requests.get(f"{url}/federation/backends", headers=admin, timeout=10).json()
    assert [(b["id"], b["origin"]) for b in listed["backends"]] == [("A", "config"), ("B", "config"),
                                                                   ("C", "registered")]
    checked = requests.post(f"{url}/federation/backends/C/check", headers=admin, timeout=60).json()
    assert checked["passed"] is True and checked["backend"] == "C"

    dem = {"load": {"process_id": "load_collection", "arguments": {"id": DEMO_DEM_COLLECTION, "spatial_extent": None,
                                                                   "temporal_extent": None}},
           "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                    "result": True}}
    fresh = bearer(url, ADMIN)  # a login from before C joined carries no credentials for C
    created = requests.post(f"{url}/jobs", headers=fresh, timeout=30,
                            json={"process": {"process_graph": dem}, "federation:force-backend": "C"})
    assert created.status_code == 201, created.text
    job_on_c = created.headers["OpenEO-Identifier"]

    configured = requests.delete(f"{url}/federation/backends/A", headers=admin, timeout=10)
    assert configured.status_code == 409 and configured.json()["code"] == "BackendRemovalRefused"
    assert requests.delete(f"{url}/federation/backends/C", headers=admin, timeout=10).status_code == 204
    assert in_every_worker(aggregator, lambda: federation_ids(aggregator) == {"A", "B"})
    departed = requests.get(f"{url}/federation/backends/C", headers=admin, timeout=10).json()
    assert departed["origin"] == "departed" and departed["title"] == "Partner C"
    assert departed["message"] == (f"backend 'C' (Partner C) left the federation on {departed['removed_at']}; "
                                   "its jobs and their results are no longer reachable here")
    for _ in range(4):  # whichever worker answers: the job of the departed backend is gone, saying why
        gone = requests.get(f"{url}/jobs/{job_on_c}", headers={**fresh, "Connection": "close"}, timeout=10)
        assert gone.status_code == 410, gone.text
        assert gone.json()["code"] == "BackendDeparted"
        assert gone.json()["message"].startswith(f"Job '{job_on_c}' is not available: backend 'C' (Partner C) left")
    unknown = requests.delete(f"{url}/federation/backends/C", headers=admin, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["code"] == "BackendNotFound"


def test_the_cli_registers_into_the_running_aggregator(aggregator, partner):
    config = aggregator.data_dir.parent / f"{aggregator.data_dir.name}.yaml"
    common = ["--config", str(config), "backends"]
    runner = CliRunner()
    added = runner.invoke(cli, [*common, "add", "D", partner.url, "--title", "Partner D",
                                "--data-dir", str(aggregator.data_dir)])
    assert added.exit_code == 0, added.output
    assert added.output.splitlines()[-1] == f"registered backend 'D' (Partner D) at {partner.url}/"
    assert in_every_worker(aggregator, lambda: "D" in federation_ids(aggregator))
    listed = runner.invoke(cli, [*common, "list", "--data-dir", str(aggregator.data_dir)])
    assert f"D\tregistered\t{partner.url}/\tPartner D" in listed.output.splitlines()
    removed = runner.invoke(cli, [*common, "remove", "D", "--data-dir", str(aggregator.data_dir)])
    assert removed.exit_code == 0 and removed.output.startswith("removed backend 'D': backend 'D' (Partner D) left")
    assert in_every_worker(aggregator, lambda: "D" not in federation_ids(aggregator))
    with RefusingPort() as port:
        refused = runner.invoke(cli, [*common, "check", port.url, "--data-dir", str(aggregator.data_dir)])
    assert refused.exit_code == 1
    assert "FAILED   api_version" in refused.output and "7 check(s) failed" in refused.output


def test_usage_report_per_backend(aggregator, admin):
    url = aggregator.url
    graph = {"load": {"process_id": "load_collection", "arguments": {
                 "id": DEMO_S1_COLLECTION, "bands": ["VV"], "temporal_extent": ["2022-06-01", "2022-06-15"],
                 "spatial_extent": {"west": 11.3638, "south": 46.4917, "east": 11.3642, "north": 46.4921}}},
             "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                      "result": True}}
    result = requests.post(f"{url}/result", json={"process": {"process_graph": graph}}, headers=bearer(url, USER),
                           timeout=120)
    assert result.status_code == 200, result.text
    rows = requests.get(f"{url}/federation/usage", params={"user": USER[0]}, headers=admin, timeout=10).json()["usage"]
    assert [(r["backend"], r["user"], r["requests"], r["jobs"]) for r in rows] == [("B", USER[0], 1, 0)]
    assert rows[0]["credits"] > 0
    csv = requests.get(f"{url}/federation/usage", params={"format": "csv", "backend": "B"}, headers=admin, timeout=10)
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "backend,user,user_id,requests,jobs,reported,credits,first,last"
    assert csv.text.splitlines()[1].startswith(f"B,{USER[0]},")
    bad = requests.get(f"{url}/federation/usage", params={"since": "yesterday"}, headers=admin, timeout=10)
    assert bad.status_code == 400 and "'since' must be an ISO 8601 date or time" in bad.json()["message"]
