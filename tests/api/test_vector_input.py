"""POST /result with load_geojson and load_url: GeoJSON in, GeoJSON out; URLs only from allowed hosts."""

from __future__ import annotations

import requests

FIELDS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": "f1", "geometry": {"type": "Point", "coordinates": [11.3, 46.5]},
     "properties": {"crop": "maize", "yield": 7.5}},
    {"type": "Feature", "id": "f2", "geometry": {"type": "Point", "coordinates": [11.4, 46.6]},
     "properties": {"crop": "wheat", "yield": None}},
]}


def post(live_server, api, graph):
    return requests.post(f"{api}/result", json={"process": {"process_graph": graph}},
                         headers=live_server.auth_headers())


def test_load_geojson_saved_as_geojson(live_server, api):
    graph = {"load": {"process_id": "load_geojson", "arguments": {"data": FIELDS, "properties": ["yield"]}},
             "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GeoJSON"},
                      "result": True}}
    response = post(live_server, api, graph)
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert [f["geometry"]["coordinates"] for f in features] == [[11.3, 46.5], [11.4, 46.6]]
    assert [(f["properties"]["crop"], f["properties"]["id"], f["properties"]["yield"]) for f in features] == \
        [("maize", "f1", 7.5), ("wheat", "f2", None)]


def test_load_url_from_a_host_not_allowed(live_server, api):
    graph = {"load": {"process_id": "load_url", "result": True,
                      "arguments": {"url": "http://10.0.0.1/fields.geojson", "format": "GeoJSON"}}}
    response = post(live_server, api, graph)
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "ProcessParameterInvalid")
    assert "10.0.0.1" in body["message"] and "fetch_allowed_hosts" in body["message"]
