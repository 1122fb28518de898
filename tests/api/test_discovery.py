"""Capabilities, discovery, CORS and the error envelope, through a real HTTP server."""

from __future__ import annotations

import gzip
import json
import re

import pytest
import requests

from backend.app import API_BLUEPRINTS

EXPOSED = {"Location", "OpenEO-Identifier", "OpenEO-Costs", "Link"}


def test_well_known_lists_the_api_as_production(live_server):
    body = requests.get(f"{live_server.root}/.well-known/openeo").json()
    assert body == {"versions": [{"url": f"{live_server.url}/", "api_version": "1.2.0", "production": True}]}


def test_capabilities(api):
    caps = requests.get(f"{api}/").json()
    assert caps["api_version"] == "1.2.0"
    assert caps["stac_version"] == "1.0.0"
    assert caps["production"] is True
    assert caps["billing"]["currency"] == "credits"
    assert {"id", "title", "description", "backend_version", "links", "endpoints"} <= set(caps)
    endpoints = {e["path"]: set(e["methods"]) for e in caps["endpoints"]}
    assert endpoints["/process_graphs/{process_graph_id}"] == {"GET", "PUT", "DELETE"}
    assert endpoints["/credentials/basic"] == {"GET"}
    assert "/" not in endpoints  # the spec asks not to list GET / itself
    assert {link["rel"] for link in caps["links"]} >= {"self", "version-history", "data", "conformance"}


def test_endpoints_are_exactly_the_registered_routes(live_server, api):
    """Every listed path answers (not 404/405) and every registered API route is listed."""
    caps = requests.get(f"{api}/").json()
    listed = {(e["path"], m) for e in caps["endpoints"] for m in e["methods"]}
    registered = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule.removeprefix("/openeo/1.2")), m)
                  for r in live_server.app.url_map.iter_rules()
                  if r.rule.startswith("/openeo/1.2") and "/.well-known/" not in r.rule
                  for m in r.methods - {"HEAD", "OPTIONS"}}
    registered.discard(("/", "GET"))
    assert listed == registered
    for path, method in listed:
        concrete = path.replace("{collection_id}", "SENTINEL2_L2A_DEMO").replace("{process_graph_id}", "nope")
        status = requests.request(method, f"{api}{concrete}").status_code
        unknown_id = ("process_graph_id" in path or "{process_id}" in path  # "nope" is rightly not found
                      or "{service_id}" in path)
        assert status not in (404, 405) or unknown_id, (method, path, status)


def test_conformance_and_formats_and_udf_runtimes(api):
    assert "https://api.openeo.org/1.2.0" in requests.get(f"{api}/conformance").json()["conformsTo"]
    formats = requests.get(f"{api}/file_formats").json()
    assert list(formats["input"]) == ["GeoJSON", "JSON", "GTiff", "netCDF"]  # load_url, load_uploaded_files
    assert {"GTiff", "netCDF", "JSON", "CSV", "PNG", "Zarr"} <= set(formats["output"])
    for spec in [*formats["input"].values(), *formats["output"].values()]:
        assert spec["gis_data_types"] and isinstance(spec["parameters"], dict)
    python = requests.get(f"{api}/udf_runtimes").json()["Python"]  # details: tests/e2e/test_udf.py
    assert python["type"] == "language" and "numpy" in python["versions"][python["default"]]["libraries"]


def test_health_needs_no_auth(live_server):
    response = requests.get(f"{live_server.root}/health")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


@pytest.mark.parametrize("path", ["/", "/collections", "/jobs", "/process_graphs/abc", "/does/not/exist"])
def test_options_preflight_is_204_with_cors(api, path):
    response = requests.options(f"{api}{path}", headers={
        "Origin": "https://editor.openeo.org", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "OPTIONS" in response.headers["Access-Control-Allow-Methods"]
    assert EXPOSED <= {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}


def test_options_lists_the_methods_of_the_path(api):
    methods = requests.options(f"{api}/process_graphs/abc").headers["Access-Control-Allow-Methods"]
    assert {m.strip() for m in methods.split(",")} == {"OPTIONS", "GET", "PUT", "DELETE"}


def test_cors_headers_on_errors_too(api):
    response = requests.get(f"{api}/me", headers={"Origin": "https://example.org"})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert EXPOSED <= {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}


def test_unknown_route_is_openeo_404(api):
    response = requests.get(f"{api}/nothing/here")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "NotFound" and "/nothing/here" in body["message"]
    assert body["links"] == []


def test_wrong_method_is_openeo_405(api):
    body = requests.delete(f"{api}/collections").json()
    assert body["code"] == "MethodNotAllowed"
    assert "GET" in body["message"]


def test_request_id_in_body_header_and_logs(api, caplog):
    caplog.set_level("INFO")
    response = requests.get(f"{api}/collections/NOPE")
    body = response.json()
    assert response.status_code == 404 and body["code"] == "CollectionNotFound"
    assert body["message"] == "Collection 'NOPE' does not exist."
    assert body["id"] and response.headers["Request-Id"] == body["id"]
    assert any(getattr(r, "request_id", None) == body["id"] for r in caplog.records)


def test_gzip_when_accepted(api):
    raw = requests.get(f"{api}/processes", headers={"Accept-Encoding": "gzip"}, stream=True).raw
    assert raw.headers["Content-Encoding"] == "gzip"
    document = json.loads(gzip.decompress(raw.read(decode_content=False)))
    assert len(document["processes"]) > 50
    plain = requests.get(f"{api}/processes", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert plain.json() == document


def test_etag_revalidation(api):
    first = requests.get(f"{api}/processes")
    again = requests.get(f"{api}/processes", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


def test_key_order_is_kept(api):
    text = requests.get(f"{api}/").text
    assert text.index('"api_version"') < text.index('"backend_version"') < text.index('"endpoints"')


def test_blueprints_have_no_duplicate_routes():
    names = [bp.name for bp in API_BLUEPRINTS]
    assert len(names) == len(set(names))


def test_processes_are_never_cut_by_limit(api):
    """The JS client (and Web Editor) send limit=50 and read only the first page."""
    full = requests.get(f"{api}/processes").json()["processes"]
    limited = requests.get(f"{api}/processes?limit=50").json()["processes"]
    assert limited == full and len(full) > 50
    ids = [p["id"] for p in full]
    assert ids == sorted(ids) and {"load_collection", "save_result"} <= set(ids)
    assert all(isinstance(p["categories"], list) and "parameters" in p and "returns" in p for p in full)


def test_well_known_also_under_the_api_root(live_server):
    """The JS client tries <given url>/.well-known/openeo first; the API root is what users paste."""
    body = requests.get(f"{live_server.url}/.well-known/openeo").json()
    assert body["versions"][0]["url"] == f"{live_server.url}/"


def test_no_oidc_endpoint_without_providers(api):
    """The spec requires at least one provider in /credentials/oidc; without any it is not offered."""
    paths = {e["path"] for e in requests.get(f"{api}/").json()["endpoints"]}
    assert "/credentials/oidc" not in paths
    assert requests.get(f"{api}/credentials/oidc").status_code == 404
