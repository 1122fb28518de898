"""POST /result: every bad input answers with the right openEO error and status, never a 500."""

from __future__ import annotations

import pytest
import requests

from backend.demo import DEMO_S2_COLLECTION

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}


def load(**overrides):
    arguments = {"id": DEMO_S2_COLLECTION, "spatial_extent": AREA,
                 "temporal_extent": ["2022-06-01", "2022-07-01"], "bands": ["B04"], **overrides}
    return {"process_id": "load_collection", "arguments": arguments}


def save(fmt="GTiff"):
    return {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": fmt},
            "result": True}


CASES = {
    "unknown process": ({"a": {"process_id": "frobnicate", "arguments": {}, "result": True}},
                        400, "ProcessUnsupported", "frobnicate"),
    "unknown collection": ({"load": load(id="NOPE"), "save": save()}, 404, "CollectionNotFound", "NOPE"),
    "unknown band": ({"load": load(bands=["B99"]), "save": save()}, 400, "ProcessParameterInvalid", "B99"),
    "missing argument": ({"a": {"process_id": "add", "arguments": {"x": 1}, "result": True}},
                         400, "ProcessParameterRequired", "'y'"),
    "unsupported argument": ({"a": {"process_id": "add", "arguments": {"x": 1, "y": 2, "z": 3},
                                    "result": True}}, 400, "ProcessParameterUnsupported", "'z'"),
    "no result node": ({"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}}},
                       400, "ProcessGraphInvalid", "exactly one"),
    "two result nodes": ({"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True},
                          "b": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}},
                         400, "ProcessGraphInvalid", "2 nodes"),
    "cycle": ({"a": {"process_id": "add", "arguments": {"x": {"from_node": "b"}, "y": 1}, "result": True},
               "b": {"process_id": "add", "arguments": {"x": {"from_node": "a"}, "y": 1}}},
              400, "ProcessGraphInvalid", "cycle"),
    "west > east": ({"load": load(spatial_extent={**AREA, "west": 680680, "east": 679720}), "save": save()},
                    400, "ProcessParameterInvalid", "west"),
    "empty interval": ({"load": load(temporal_extent=["2022-06-10", "2022-06-01"]), "save": save()},
                       400, "ProcessParameterInvalid", "temporal_extent"),
    "outside the collection": ({"load": load(spatial_extent={"west": 0, "south": 0, "east": 1, "north": 1}),
                                "save": save()}, 400, "ProcessParameterInvalid", "no data"),
    "no dates in interval": ({"load": load(temporal_extent=["2021-01-01", "2021-02-01"]), "save": save()},
                             400, "ProcessParameterInvalid", "no data"),
    "unsupported format": ({"load": load(), "save": save("JPEG2000")}, 400, "FormatUnsupported", "JPEG2000"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_graphs(live_server, api, case):
    graph, status, code, fragment = CASES[case]
    response = requests.post(f"{api}/result", json={"process": {"process_graph": graph}},
                             headers=live_server.auth_headers())
    body = response.json()
    assert (response.status_code, body["code"]) == (status, code), body
    assert fragment in body["message"]


def test_missing_process(live_server, api):
    response = requests.post(f"{api}/result", json={"foo": 1}, headers=live_server.auth_headers())
    assert (response.status_code, response.json()["code"]) == (400, "ProcessGraphMissing")


def test_needs_authentication(api):
    response = requests.post(f"{api}/result", json={"process": {"process_graph": {}}})
    assert response.status_code == 401


@pytest.mark.parametrize("x, expected", [(0, None), (1, None), (6, 3.0)])
def test_division_by_zero_is_not_an_error(live_server, api, x, expected):
    """0/0 is NaN and 1/0 is inf (both JSON null); a plain value result comes back as JSON."""
    graph = {"a": {"process_id": "divide", "arguments": {"x": x, "y": 0 if expected is None else 2}},
             "b": {"process_id": "add", "arguments": {"x": {"from_node": "a"}, "y": 0}, "result": True}}
    response = requests.post(f"{api}/result", json={"process": {"process_graph": graph}},
                             headers=live_server.auth_headers())
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    assert response.json() == expected
    assert response.headers["OpenEO-Identifier"]


def test_too_large_for_synchronous_processing(session_data_dir, tmp_path):
    from backend.app import create_app
    from backend.settings import load_settings
    from tests.conftest import LiveServer

    (tmp_path / "demo-catalog").symlink_to(session_data_dir / "demo-catalog")
    server = LiveServer(create_app(load_settings(data_dir=tmp_path, sync_max_pixels=10_000)))
    try:
        graph = {"load": load(), "save": save()}  # 5 dates × 1 band × 84 × 96 = 40,320 values
        response = requests.post(f"{server.url}/result", json={"process": {"process_graph": graph}},
                                 headers=server.auth_headers())
        body = response.json()
        assert (response.status_code, body["code"]) == (400, "ProcessGraphComplexity")
        assert "40,320 values" in body["message"] and "batch job" in body["message"]
    finally:
        server.stop()


def test_top_level_parameter_defaults(live_server, api):
    process = {"parameters": [{"name": "factor", "schema": {"type": "number"}, "default": 7, "optional": True}],
               "process_graph": {"m": {"process_id": "multiply",
                                       "arguments": {"x": 6, "y": {"from_parameter": "factor"}}, "result": True}}}
    response = requests.post(f"{api}/result", json={"process": process}, headers=live_server.auth_headers())
    assert response.json() == 42
