"""Batch jobs classify errors like POST /result: argument values checked against the process's schema
at run time (error in the job's log, charged its usage), a bug in our code 500 Internal (not charged)."""

from __future__ import annotations

import openeo
import pytest

from backend.demo import DEMO_S2_COLLECTION
from tests.api.test_error_classes import buggy_sgn  # noqa: F401 - fixture
from tests.e2e.test_batch_jobs import wait_for
from tests.e2e.test_sync_processing import AREA

pytestmark = pytest.mark.usefixtures("job_runner")


@pytest.fixture
def user(live_server):
    name, password = live_server.new_user()
    connection = openeo.connect(live_server.url).authenticate_basic(name, password)
    return connection, connection.describe_account()["user_id"]


def run_job(connection, graph: dict) -> tuple[object, dict]:
    job = connection.create_job({"process_graph": graph})
    job.start()
    return job, wait_for(job, {"error", "finished"})


def test_text_concat_with_an_object_fails_the_job(user):
    connection, _ = user
    job, metadata = run_job(connection, {"t": {"process_id": "text_concat", "arguments": {"data": ["a", {"x": 1}]},
                                               "result": True}})
    assert metadata["status"] == "error"  # it used to finish with the text "a{'x': 1}"
    (entry,) = job.logs(level="error")
    assert entry["code"] == "ProcessParameterInvalid"
    assert "Node 't'" in entry["message"] and "parameter 'data'" in entry["message"]


def test_a_bug_in_an_implementation_fails_the_job_as_internal_and_not_charged(user, live_server,
                                                                             buggy_sgn):  # noqa: F811
    connection, user_id = user
    graph = {"load": {"process_id": "load_collection", "arguments": {
                 "id": DEMO_S2_COLLECTION, "spatial_extent": AREA, "temporal_extent": ["2022-06-01", "2022-07-01"],
                 "bands": ["B04"]}},
             "s": {"process_id": "sgn", "arguments": {"x": {"from_node": "load"}}},
             "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "s"}, "format": "GTiff"},
                      "result": True}}
    job, metadata = run_job(connection, graph)
    assert metadata["status"] == "error"
    (entry,) = job.logs(level="error")
    assert entry["code"] == "Internal" and "Process 'sgn' (node 's')" in entry["message"]
    assert metadata["costs"] == 0
    ledger = live_server.services.ledger
    (released,) = [e for e in ledger.entries(user_id) if e.kind == "release"]
    assert "Internal (not charged)" in released.note
    assert [e.amount for e in ledger.entries(user_id) if e.kind == "charge"] == [0.0]
    assert ledger.balance(user_id) == 1000 == ledger.sum_of_entries(user_id)
