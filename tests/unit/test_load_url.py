"""load_url: GeoJSON by URL through the fetching policy, against a real HTTP server on localhost."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest
import shapely

from apicore import errors
from backend.processing.engine.executor import RunContext
from backend.processing.file_formats import file_formats
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations
from backend.processing.processes.load_geojson import load_geojson
from backend.processing.validation import ValidationContext, validate_process
from backend.settings import load_settings

PARCELS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": "a", "geometry": {"type": "Point", "coordinates": [11.3, 46.5]},
     "properties": {"crop": "maize", "area": 2.5}},
    {"type": "Feature", "id": "b",
     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
     "properties": {"crop": "wheat", "area": None}},
]}
DOCUMENTS = {
    "/parcels.geojson": json.dumps(PARCELS).encode(),
    "/stac.json": json.dumps({"type": "Collection", "id": "c"}).encode(),
    "/page.html": b"<html>not json</html>",
}


class Handler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        Handler.hits.append(self.path)
        body = DOCUMENTS.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def clear_hits():
    Handler.hits.clear()


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def load_url(implementations, tmp_path, allowed=("127.0.0.1",), max_bytes=1_000_000, **arguments):
    settings = load_settings(data_dir=tmp_path, demo_catalog=False, fetch_allowed_hosts=list(allowed),
                             fetch_max_bytes=max_bytes)
    context = RunContext(services=SimpleNamespace(settings=settings))
    return implementations.call("load_url", arguments, {}, context, "n")


def test_geojson_from_an_allowed_host_is_the_load_geojson_cube(implementations, tmp_path, server):
    for name in ("GeoJSON", "geojson", "JSON"):  # case-insensitive; JSON holding GeoJSON reads the same
        cube = load_url(implementations, tmp_path, url=f"{server}/parcels.geojson", format=name)
        expected = load_geojson(PARCELS)
        assert cube.dims == ("geometry",) and cube.sizes["geometry"] == 2
        assert all(shapely.equals(cube.geometry.values, expected.geometry.values))
        assert list(cube.coords["crop"].values) == ["maize", "wheat"]
        np.testing.assert_array_equal(cube.coords["area"].values, [2.5, np.nan])
    assert Handler.hits == ["/parcels.geojson"] * 3


def test_host_not_on_the_allow_list_is_refused_without_contact(implementations, tmp_path, server):
    with pytest.raises(errors.ProcessParameterInvalid) as info:
        load_url(implementations, tmp_path, allowed=("data.example.org",), url=f"{server}/parcels.geojson",
                 format="GeoJSON")
    message = info.value.message
    assert "'load_url'" in message and "'url'" in message and "fetch_allowed_hosts" in message
    assert "127.0.0.1" in message
    assert Handler.hits == []


def test_size_limit_of_the_policy_applies(implementations, tmp_path, server):
    with pytest.raises(errors.ProcessParameterInvalid, match="fetch_max_bytes"):
        load_url(implementations, tmp_path, max_bytes=100, url=f"{server}/parcels.geojson", format="GeoJSON")


def test_unsupported_formats_are_refused_naming_the_supported_ones(implementations, tmp_path, server):
    for name in ("GTiff", "netCDF", "CSV"):
        with pytest.raises(errors.OpenEOError) as info:
            load_url(implementations, tmp_path, url=f"{server}/parcels.geojson", format=name)
        assert info.value.code == "FormatUnsupported" and info.value.status == 400
        assert f"'{name}'" in info.value.message and "GeoJSON, JSON" in info.value.message
        assert "load_stac" in info.value.message
    assert Handler.hits == []  # refused before any request


@pytest.mark.parametrize("path, words", [("/stac.json", ["not GeoJSON", "'Collection'"]),
                                         ("/page.html", ["not valid JSON"])])
def test_content_that_is_not_geojson_is_format_unsuitable(implementations, tmp_path, server, path, words):
    with pytest.raises(errors.OpenEOError) as info:
        load_url(implementations, tmp_path, url=f"{server}{path}", format="JSON")
    assert info.value.code == "FormatUnsuitable" and info.value.status == 400
    for word in words:
        assert word in info.value.message


def test_options_are_refused(implementations, tmp_path, server):
    with pytest.raises(errors.ProcessParameterInvalid, match="no reading options"):
        load_url(implementations, tmp_path, url=f"{server}/parcels.geojson", format="GeoJSON",
                 options={"layer": "x"})


def test_input_formats_are_listed_and_checked_by_validation(implementations):
    inputs = file_formats()["input"]
    assert set(inputs) == {"GeoJSON", "JSON", "GTiff", "netCDF"}  # the rasters: load_uploaded_files only
    assert all(inputs[name]["gis_data_types"] == ["vector"] for name in ("GeoJSON", "JSON"))
    assert all(spec["parameters"] == {} for spec in inputs.values())
    context = ValidationContext(predefined=lambda pid: implementations.spec(pid) if pid in implementations else None)

    def graph(**arguments):
        return {"process_graph": {"load": {"process_id": "load_url", "result": True,
                                           "arguments": {"url": "https://example.org/a.geojson", **arguments}}}}

    assert validate_process(graph(format="geojson"), context) == []
    found = validate_process(graph(format="GTiff"), context)
    assert [e["code"] for e in found] == ["FormatUnsupported"] and "GeoJSON, JSON" in found[0]["message"]
    found = validate_process(graph(format="GeoJSON", options={"layer": 1}), context)
    assert [e["code"] for e in found] == ["ProcessParameterInvalid"]
