"""The real clients against an aggregator over the package's two live backends and a third one that refuses
connections: what the JS client (@openeo/js-client, tests/js; the Web Editor is built on it) and the Python
client's federation helpers read of a federation. tests/js/federation_calls.mjs makes the JS calls and prints
one JSON report."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time

import openeo
import pytest
import requests

from tests.aggregator.e2e.conftest import FAST_HEALTH, USER
from tests.e2e.test_js_client import JS_DIR, node  # noqa: F401 (the fixture installing the pinned client)
from tests.support.federation import start_aggregator, wait_ready
from tests.support.processes import LOCALHOST, free_port

SCRIPT = JS_DIR / "federation_calls.mjs"


@pytest.fixture(scope="module")
def with_dead_backend(federation, tmp_path_factory) -> str:
    """The API URL of an aggregator over A, B and C, where nothing listens."""
    dead = f"http://{LOCALHOST}:{free_port()}/openeo/1.2"
    aggregator = start_aggregator(tmp_path_factory.mktemp("three-backends") / "aggregator",
                                  {"A": federation.a.url, "B": federation.b.url, "C": dead}, users=[USER],
                                  **FAST_HEALTH)
    try:
        wait_ready([aggregator])
        wait_for_first_probes(aggregator.url)
        yield aggregator.url
    finally:
        aggregator.stop()


@pytest.fixture(scope="module")
def report(node, with_dead_backend) -> dict:  # noqa: F811
    completed = subprocess.run([node, str(SCRIPT), with_dead_backend, *USER], cwd=JS_DIR, capture_output=True,
                               text=True, timeout=120, env={**os.environ, "NODE_NO_WARNINGS": "1"})
    try:
        return json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"federation_calls.mjs printed no report (exit {completed.returncode}):\n{completed.stderr}")


def wait_for_first_probes(url: str, timeout: float = 20.0) -> None:
    """Until GET / shows a status for every backend (none before the first probe, as the extension allows)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        federation = requests.get(f"{url}/", timeout=5).json()["federation"]
        if all("status" in backend for backend in federation.values()):
            return
        time.sleep(0.2)
    pytest.fail(f"no status for every backend after {timeout} s: {federation}")


def result(report: dict, step: str):
    entry = report["steps"][step]
    assert "error" not in entry, f"JS client call {step!r} failed: {entry['error']}"
    return entry["result"]


def test_the_client_lists_each_backend_with_its_status(report):
    federation = result(report, "federation")
    assert federation["has_federation_conformance"] is True  # the client matches federation/0.1.*
    by_id = {backend["id"]: backend for backend in federation["backends"]}
    assert set(by_id) == {"A", "B", "C"}
    assert (by_id["A"]["status"], by_id["B"]["status"], by_id["C"]["status"]) == ("online", "online", "offline")
    assert by_id["C"]["last_successful_check"] is None  # never seen
    assert by_id["A"]["last_status_check"] and by_id["A"]["last_successful_check"]
    assert federation["details_of_a"]["title"] == "Backend A"


def test_listings_name_the_missing_backend(report):
    collections = result(report, "list_collections")
    assert sorted(collections["ids"]) == ["DEM_DEMO", "SENTINEL1_GRD_DEMO", "SENTINEL2_L2A_DEMO"]
    assert collections["missing"] == ["C"]
    assert sorted(collections["backends"]["DEM_DEMO"]) == ["A", "B"]
    processes = result(report, "list_processes")
    assert processes["count"] > 100 and processes["missing"] == ["C"]
    formats = result(report, "list_file_types")
    assert "GTIFF" in formats["outputs"]  # the client upper-cases them and formats["missing"] == ["C"]
    jobs = result(report, "list_jobs")
    assert jobs["missing"] == ["C"]


def test_validation_and_account(report):
    validation = result(report, "validate")
    assert validation == {"errors": [], "backends": ["A", "B"]}
    assert result(report, "authenticate") == {"authenticated": True}
    account = result(report, "describe_account")
    assert account["name"] == USER[0] and account["budget"] > 0
    assert result(report, "describe_collection") == {"id": "SENTINEL2_L2A_DEMO", "backends": ["A"]}


def test_python_client_federation_helpers(with_dead_backend, caplog):
    connection = openeo.connect(with_dead_backend).authenticate_basic(*USER)
    details = connection.capabilities().ext_federation_backend_details()
    assert {b: details[b].get("status") for b in details} == {"A": "online", "B": "online", "C": "offline"}
    with caplog.at_level(logging.WARNING):
        collections = connection.list_collections()
    assert collections.ext_federation_missing() == ["C"]
    assert "missing federation components: ['C']" in caplog.text  # the client warns the user
    assert sorted(c["id"] for c in collections) == ["DEM_DEMO", "SENTINEL1_GRD_DEMO", "SENTINEL2_L2A_DEMO"]
    assert connection.list_processes().ext_federation_missing() == ["C"]
    assert connection.list_jobs().ext_federation_missing() == ["C"]
    validation = connection.validate_process_graph(
        connection.load_collection("DEM_DEMO").flat_graph())
    assert list(validation) == [] and validation.ext_federation_backends() == ["A", "B"]
