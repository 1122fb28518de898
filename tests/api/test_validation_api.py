"""POST /validation over real HTTP and through the real openeo client: always 200 with every problem."""

from __future__ import annotations

import json

import openeo
import pytest
import requests

from backend.demo import DEMO_S2_COLLECTION
from tests.conftest import SHARED_ASSETS

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]
EVI_EXAMPLE = (SHARED_ASSETS / "src" / "openeo_test_suite" / "tests" / "general" / "payload_examples"
               / "post_validation" / "post_validation_1.json")


def node(process_id, result=False, **arguments):
    return {"process_id": process_id, "arguments": arguments, **({"result": True} if result else {})}


def load(**overrides):
    return node("load_collection", **{"id": DEMO_S2_COLLECTION, "spatial_extent": AREA, "temporal_extent": JUNE,
                                      "bands": ["B04", "B08"], **overrides})


NDVI = {
    "load": load(),
    "ndvi": node("ndvi", data={"from_node": "load"}, nir="B08", red="B04"),
    "mean": node("reduce_dimension", data={"from_node": "ndvi"}, dimension="t", reducer={"process_graph": {
        "m": node("mean", data={"from_parameter": "data"}, result=True)}}),
    "save": node("save_result", data={"from_node": "mean"}, format="GTiff", result=True),
}


def post(api, body, headers=None, **kwargs):
    return requests.post(f"{api}/validation", json=body, headers=headers, **kwargs)


def codes(response):
    assert response.status_code == 200, response.text
    return [(e["id"], e["code"]) for e in response.json()["errors"]]


def test_listed_in_the_capabilities(api):
    endpoints = requests.get(f"{api}/").json()["endpoints"]
    assert {"path": "/validation", "methods": ["POST"]} in endpoints


@pytest.mark.parametrize("authenticated", [False, True])
def test_valid_graph(live_server, api, authenticated):
    headers = live_server.auth_headers() if authenticated else None
    response = post(api, {"process_graph": NDVI}, headers)
    assert (response.status_code, response.json()) == (200, {"errors": []})
    assert response.headers["Content-Type"] == "application/json"


def test_five_problems_at_once(api):
    graph = {
        "load1": load(),
        "load2": load(id="NO_SUCH_COLLECTION"),
        "load3": load(spatial_extent={**AREA, "west": 680680, "east": 679720}),
        "load4": load(bands=["B99"]),
        "frob": node("frobnicate", data={"from_node": "load1"}),
        "add": node("add", x=1),
        "save": node("save_result", data={"from_node": "load1"}, format="GTiff", result=True),
    }
    response = post(api, {"process_graph": graph})
    assert codes(response) == [("load2", "CollectionNotFound"), ("load3", "ProcessParameterInvalid"),
                               ("load4", "ProcessParameterInvalid"), ("frob", "ProcessUnsupported"),
                               ("add", "ProcessParameterRequired")]
    for entry in response.json()["errors"]:
        assert set(entry) == {"id", "code", "message", "links"} and entry["links"] == []
        assert f"Node '{entry['id']}'" in entry["message"]


def test_mistyped_argument_and_callback_problem(api):
    graph = {"load": load(),
             "r": node("reduce_dimension", data={"from_node": "load"}, dimension=5, result=True,
                       reducer={"process_graph": {"m": node("meen", data={"from_parameter": "data"}, result=True)}})}
    response = post(api, {"process_graph": graph})
    assert codes(response) == [("r", "ProcessParameterInvalid"), ("r/reducer/m", "ProcessUnsupported")]
    assert "dimension" in response.json()["errors"][0]["message"]


def test_structure_problem(api):
    response = post(api, {"process_graph": {"a": node("add", x=1, y=2)}})
    assert codes(response) == [("process_graph", "ProcessGraphInvalid")]


def test_conformance_payload_evi_udp_is_valid(api):
    """The suite's example declares parameters red/nir/blue that are unresolvable here: not an error."""
    if not EVI_EXAMPLE.exists():
        pytest.skip(f"conformance assets not found at {SHARED_ASSETS}")
    assert codes(post(api, json.loads(EVI_EXAMPLE.read_text()))) == []


def test_empty_object_is_a_validation_error_not_a_bad_request(api):
    """The conformance suite posts {} and expects 200 with errors."""
    assert codes(post(api, {})) == [("process_graph", "ProcessGraphMissing")]


@pytest.mark.parametrize("kwargs, status, code", [
    ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "JsonInvalid"),
    ({"data": "x=1", "headers": {"Content-Type": "text/plain"}}, 415, "UnsupportedMediaType"),
    ({}, 415, "UnsupportedMediaType"),
    ({"json": [1, 2]}, 400, "ProcessGraphMissing"),
    ({"json": "process"}, 400, "ProcessGraphMissing"),
    ({"data": "[" * 100_000 + "]" * 100_000, "headers": {"Content-Type": "application/json"}}, 413,
     "PayloadTooLarge"),
])
def test_malformed_requests_are_4xx(api, kwargs, status, code):
    response = requests.post(f"{api}/validation", **kwargs)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


def test_deep_nesting_is_reported_not_crashing(api):
    graph = {"a": node("pi", result=True)}
    for _ in range(100):
        graph = {"a": node("array_apply", data=[1], process={"process_graph": graph}, result=True)}
    response = post(api, {"process_graph": graph})
    assert [code for _, code in codes(response)] == ["ProcessGraphInvalid"]
    deep_literal = '{"process_graph": {"s": {"process_id": "sum", "result": true, "arguments": {"data": %s}}}}' % (
        "[" * 5000 + "]" * 5000)
    response = requests.post(f"{api}/validation", data=deep_literal, headers={"Content-Type": "application/json"})
    assert codes(response) == [("s", "ProcessParameterInvalid")]
    assert len(response.json()["errors"][0]["message"]) < 500  # the value is not echoed in full


def test_invalid_token_is_still_refused(api):
    response = post(api, {"process_graph": NDVI}, {"Authorization": "Bearer basic//forged"})
    assert (response.status_code, response.json()["code"]) == (401, "TokenInvalid")


def put_udp(api, headers, process_id, process_graph, parameters=()):
    body = {"process_graph": process_graph,
            "parameters": [{"name": p, "description": p, "schema": {"type": "number"}} for p in parameters]}
    requests.put(f"{api}/process_graphs/{process_id}", json=body, headers=headers).raise_for_status()


def test_user_defined_processes(live_server, api):
    headers = live_server.auth_headers()
    put_udp(api, headers, "plus_one", {"a": node("add", x={"from_parameter": "v"}, y=1, result=True)}, ["v"])
    put_udp(api, headers, "ping", {"p": node("pong", result=True)})
    put_udp(api, headers, "pong", {"q": node("ping", result=True)})
    put_udp(api, headers, "broken", {"b": node("frobnicate", result=True)})

    assert codes(post(api, {"process_graph": {"c": node("plus_one", v=41, result=True)}}, headers)) == []
    anonymous = post(api, {"process_graph": {"c": node("plus_one", v=41, result=True)}})
    assert codes(anonymous) == [("c", "ProcessUnsupported")]
    other_user = post(api, {"process_graph": {"c": node("plus_one", v=41, result=True)}}, live_server.auth_headers())
    assert codes(other_user) == [("c", "ProcessUnsupported")]

    graph = {"c1": node("plus_one", v="x"), "c2": node("ping"), "c3": node("broken"),
             "c4": {"process_id": "nowhere", "namespace": "user", "arguments": {}, "result": True}}
    response = post(api, {"process_graph": graph}, headers)
    assert codes(response) == [("c1", "ProcessParameterInvalid"), ("c2/ping/p/pong/q", "ProcessGraphInvalid"),
                               ("c3/broken/b", "ProcessUnsupported"), ("c4", "ProcessUnsupported")]
    assert "cycle: ping -> pong -> ping" in response.json()["errors"][1]["message"]


# --- the real openeo Python client ------------------------------------------------------------


@pytest.fixture
def connection(live_server):
    name, password = live_server.new_user()
    return openeo.connect(live_server.url).authenticate_basic(name, password)


def test_client_validate_process_graph(connection):
    assert connection.validate_process_graph(NDVI) == []
    broken = {**NDVI, "load": load(bands=["B04", "B99"])}
    problems = connection.validate_process_graph(broken)
    assert [(p["id"], p["code"]) for p in problems] == [("load", "ProcessParameterInvalid")]
    assert "B99" in problems[0]["message"]


def test_client_built_cube_validates_clean(connection):
    """What the client generates itself (nulls, options {}, its callback form) raises no false alarm."""
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                      bands=["B04", "B08"])
    cube = cube.ndvi(nir="B08", red="B04").reduce_dimension("t", "mean").apply(lambda x: x * 2 + 1)
    assert cube.save_result(format="GTiff").validate() == []
    masked = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                        bands=["B04", "SCL"], max_cloud_cover=50)
    assert masked.filter_bands(["B04"]).aggregate_temporal_period("month", reducer="max").validate() == []
