"""Whose fault is it: the user's mistakes are 4xx with a message saying what to change; an unexpected
exception in our code or a library is 500 Internal and is not charged (POST /result and /validation)."""

from __future__ import annotations

import math

import pytest
import requests

from backend.demo import DEMO_S2_COLLECTION
from backend.processing.engine.executor import Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.processing.engine.implementations import Implementation

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}


def result(live_server, graph, headers=None):
    return requests.post(f"{live_server.url}/result", json={"process": {"process_graph": graph}},
                         headers=headers or live_server.auth_headers())


def validation_errors(live_server, graph):
    response = requests.post(f"{live_server.url}/validation", json={"process_graph": graph},
                             headers=live_server.auth_headers())
    assert response.status_code == 200, response.text
    return response.json()["errors"]


def user_id(live_server, headers) -> str:
    return requests.get(f"{live_server.url}/me", headers=headers).json()["user_id"]


def failed_request_charges(live_server, uid) -> list[float]:
    """The charges of this user's failed synchronous requests, from the ledger."""
    return [-entry.amount for entry in live_server.services.ledger.entries(uid)
            if entry.kind == "charge" and (entry.note or "").startswith("POST /result failed")]


@pytest.mark.parametrize("reference, fragment", [
    ({"from_node": "nowhere"}, "['nowhere'], which do not exist"),
    ({"from_node": 5}, '{"from_node": 5}: name the node by its id'),
    ({"from_parameter": ["x"]}, "name the parameter by its id"),
])
def test_bad_from_node_is_process_graph_invalid(live_server, reference, fragment):
    graph = {"a": {"process_id": "add", "arguments": {"x": reference, "y": 1}, "result": True}}
    response = result(live_server, graph)
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "ProcessGraphInvalid"), body
    assert "Node 'a'" in body["message"] and fragment in body["message"]
    (error,) = validation_errors(live_server, graph)
    assert error["code"] == "ProcessGraphInvalid" and fragment in error["message"]


def test_power_overflows_to_infinity_as_ieee_754():
    """The spec's numbers include ±Infinity and its tests expect power(2, Infinity) = Infinity: a result
    beyond 64-bit floats is +inf (not a 100,001-digit integer that no answer can carry)."""
    from backend.processing.process_registry import ProcessRegistry
    from backend.processing.processes import build_implementations

    implementations = build_implementations(ProcessRegistry())
    graph = Graph.parse({"p": {"process_id": "power", "arguments": {"base": 10, "p": 100000}, "result": True}})
    assert Executor(implementations, RunContext()).run(graph, {}) == math.inf
    graph = Graph.parse({"p": {"process_id": "power", "arguments": {"base": -10, "p": 100001}, "result": True}})
    assert Executor(implementations, RunContext()).run(graph, {}) == -math.inf
    graph = Graph.parse({"p": {"process_id": "power", "arguments": {"base": 3, "p": 3}, "result": True}})
    assert Executor(implementations, RunContext()).run(graph, {}) == 27


def test_power_overflow_through_post_result(live_server):
    power = {"process_id": "power", "arguments": {"base": 10, "p": 100000}}
    response = result(live_server, {"p": {**power, "result": True}})
    assert response.status_code == 200, response.text  # was a 500: a 100,001-digit integer to write
    assert response.json() is None  # JSON has no Infinity: written as null, like 1/0
    graph = {"p": power, "big": {"process_id": "gt", "arguments": {"x": {"from_node": "p"}, "y": 1e308},
                                 "result": True}}
    assert result(live_server, graph).json() is True  # +inf, not no-data


def test_numbers_beyond_64_bit_floats_are_a_clear_400(live_server):
    graph = {"a": {"process_id": "add", "arguments": {"x": 10 ** 400, "y": 1.5}, "result": True}}
    response = result(live_server, graph)
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "ProcessParameterInvalid"), body
    assert "Process 'add' (node 'a')" in body["message"] and "Use smaller values" in body["message"]


def test_text_concat_with_an_object_is_refused_at_run_time(live_server):
    """POST /result checks argument values against the process's schema as /validation does."""
    graph = {"t": {"process_id": "text_concat", "arguments": {"data": ["a", {"x": 1}]}, "result": True}}
    headers = live_server.auth_headers()
    response = result(live_server, graph, headers)
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "ProcessParameterInvalid"), body
    assert "Node 't'" in body["message"] and "parameter 'data'" in body["message"]
    assert "text_concat" in body["message"] and "(at '1')" in body["message"]
    (error,) = validation_errors(live_server, graph)
    assert error["code"] == "ProcessParameterInvalid" and "parameter 'data'" in error["message"]
    assert failed_request_charges(live_server, user_id(live_server, headers)) == [0.0]  # nothing was used


def test_computed_values_are_checked_too(live_server):
    """A value computed by another node (not visible to /validation) that does not fit the schema."""
    graph = {"n": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
             "t": {"process_id": "text_begins", "arguments": {"data": {"from_node": "n"}, "pattern": "a"},
                   "result": True}}
    response = result(live_server, graph)
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "ProcessParameterInvalid"), body
    assert "parameter 'data'" in body["message"] and "3 is not of type 'string'" in body["message"]


def _raise_key_error(x):
    raise KeyError("a bug in our code")


@pytest.fixture
def buggy_sgn(live_server, monkeypatch):
    """``sgn`` replaced by an implementation with a bug (a plain KeyError), as a defect would be."""
    implementations = live_server.services.implementations
    spec = implementations.spec("sgn")
    monkeypatch.setitem(implementations._entries, "sgn", Implementation(_raise_key_error, spec, False, False))


def test_a_bug_in_an_implementation_is_500_internal_and_not_charged(live_server, buggy_sgn, caplog):
    headers = live_server.auth_headers()
    graph = {"load": {"process_id": "load_collection", "arguments": {
                 "id": DEMO_S2_COLLECTION, "spatial_extent": AREA, "temporal_extent": ["2022-06-01", "2022-07-01"],
                 "bands": ["B04"]}},
             "s": {"process_id": "sgn", "arguments": {"x": {"from_node": "load"}}, "result": True}}
    with caplog.at_level("ERROR"):
        response = result(live_server, graph, headers)
    body = response.json()
    assert (response.status_code, body["code"]) == (500, "Internal"), body
    assert "Process 'sgn' (node 's')" in body["message"] and "KeyError" in body["message"]
    assert "not charged" in body["message"]
    assert any(record.exc_info and "a bug in our code" in str(record.exc_info[1]) for record in caplog.records)
    uid = user_id(live_server, headers)
    assert failed_request_charges(live_server, uid) == [0.0]
    ledger = live_server.services.ledger
    assert ledger.balance(uid) == 1000 and ledger.sum_of_entries(uid) == 1000
