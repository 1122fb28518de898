"""load_stac over real HTTP: the demo catalog from a static file server and from a real STAC API server
(rustac), through the executor and POST /result, equals load_collection pixel for pixel; hosts that
are not on fetch_allowed_hosts are refused with a clear 400."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import numpy as np
import pytest
import rasterio
import requests

from apicore import errors
from backend.app import create_app
from backend.demo import DEMO_S2_COLLECTION, ensure_demo_catalog
from backend.processing import fetching
from backend.processing.engine.executor import Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.settings import load_settings
from tests.conftest import LiveServer
from tests.support.stac_api_server import serve_stac_api

OFFICIAL = {"west": 679720, "east": 680680, "south": 5151080, "north": 5151920, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]
S2 = DEMO_S2_COLLECTION


# --- a static file server with Range requests (GDAL reads COGs by byte ranges) --------------------


class StaticFiles(BaseHTTPRequestHandler):
    root: Path
    requests: list[str]

    def log_message(self, *args):
        pass

    def _file(self) -> Path | None:
        path = (self.root / unquote(urlsplit(self.path).path).lstrip("/")).resolve()
        return path if path.is_file() else None

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        self.requests.append(self.path)
        path = self._file()
        if path is None:
            self.send_error(404)
            return
        data = path.read_bytes()
        start, end, status = 0, len(data) - 1, 200
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match and (match[1] or match[2]):
            if match[1]:
                start, end = int(match[1]), min(int(match[2]) if match[2] else end, end)
            else:
                start = max(0, len(data) - int(match[2]))
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if path.suffix == ".json" else "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if body:
            try:
                self.wfile.write(data[start:end + 1])
            except (BrokenPipeError, ConnectionResetError):  # GDAL may stop reading a range early
                pass


def serve_directory(root: Path) -> tuple[ThreadingHTTPServer, str, list[str]]:
    seen: list[str] = []
    handler = type("Handler", (StaticFiles,), {"root": root.resolve(), "requests": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_port}", seen


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(session_data_dir) -> Path:
    return ensure_demo_catalog(session_data_dir / "demo-catalog")


@pytest.fixture(scope="module")
def www(catalog, tmp_path_factory):
    """http://127.0.0.1:P/demo/... = the demo catalog; /evil/... = items with forbidden asset hrefs."""
    root = tmp_path_factory.mktemp("www")
    (root / "demo").symlink_to(catalog.parent)
    evil = root / "evil"
    evil.mkdir()
    item_json = next((catalog.parent / S2).glob("S2_DEMO_T1_20220602/*.json"))
    item = json.loads(item_json.read_text())
    for name, href in (("file", "file:///etc/hostname"), ("metadata", "http://169.254.169.254/latest/B04.tif"),
                       ("other-host", "http://localhost:1/B04.tif")):
        copy = json.loads(json.dumps(item))
        copy["assets"]["B04"]["href"] = href
        (evil / f"{name}.json").write_text(json.dumps(copy))
    httpd, url, seen = serve_directory(root)
    yield {"url": url, "requests": seen}
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def stac_api(catalog, www, tmp_path_factory):
    """rustac serving the demo catalog, its asset hrefs pointing at the static HTTP server."""
    copy = tmp_path_factory.mktemp("api-catalog")
    base = catalog.parent
    for source in base.rglob("*.json"):
        relative = source.relative_to(base)
        document = json.loads(source.read_text())
        if document.get("type") == "Feature":
            page = f"{www['url']}/demo/{relative.as_posix()}"
            for asset in document["assets"].values():
                asset["href"] = urljoin(page, asset["href"])
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document))
    with serve_stac_api(copy / "catalog.json") as url:
        yield url


def make_backend(tmp_path_factory, catalog, **settings) -> LiveServer:
    data_dir = tmp_path_factory.mktemp("load-stac")
    (data_dir / "demo-catalog").symlink_to(catalog.parent)  # no second generation
    return LiveServer(create_app(load_settings(data_dir=data_dir, **settings)))


@pytest.fixture(scope="module")
def backend(tmp_path_factory, catalog):
    server = make_backend(tmp_path_factory, catalog, fetch_allowed_hosts=["127.0.0.1"])
    yield server
    server.stop()


def run(server: LiveServer, graph: dict):
    context = RunContext(services=server.services, api_root=server.url, max_pixels=10**9)
    return Executor(server.services.implementations, context).run(Graph.parse(graph), {})


def load_stac_graph(url: str, extent=OFFICIAL, interval=JUNE, bands=("B04", "B08"), properties=None) -> dict:
    arguments = {"url": url, "spatial_extent": extent, "temporal_extent": interval, "bands": list(bands)}
    if properties is not None:
        arguments["properties"] = properties
    return {"load": {"process_id": "load_stac", "arguments": arguments, "result": True}}


def load_collection_graph(extent=OFFICIAL, interval=JUNE, bands=("B04", "B08")) -> dict:
    return {"load": {"process_id": "load_collection", "result": True,
                     "arguments": {"id": S2, "spatial_extent": extent, "temporal_extent": interval,
                                   "bands": list(bands)}}}


def assert_same_cube(cube, reference) -> None:
    assert cube.dims == ("t", "bands", "y", "x") and cube.dtype == np.float32
    assert cube.shape == reference.shape and cube.rio.crs == reference.rio.crs
    for dim in ("t", "bands", "x", "y"):
        np.testing.assert_array_equal(cube[dim].values, reference[dim].values)
    values = cube.values
    np.testing.assert_array_equal(values, reference.values)  # NaN == NaN here
    assert np.isfinite(values).any() and np.isnan(values).sum() == np.isnan(reference.values).sum()


# --- pixels equal load_collection -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["static", "api"])
def test_collection_equals_load_collection(backend, www, stac_api, kind):
    url = f"{www['url']}/demo/{S2}/collection.json" if kind == "static" else f"{stac_api}/collections/{S2}"
    cube = run(backend, load_stac_graph(url))
    reference = run(backend, load_collection_graph())
    assert [str(t)[:10] for t in cube.t.values] == ["2022-06-02", "2022-06-12", "2022-06-17", "2022-06-22",
                                                    "2022-06-27"]
    assert cube.shape == (5, 2, 84, 96) and list(cube.bands.values) == ["B04", "B08"]
    assert_same_cube(cube, reference)


def test_api_collection_uses_item_search(backend, stac_api, www, monkeypatch):
    """Through the API, items come from POST /search with bbox and datetime (not from item links)."""
    calls = []
    api_io = fetching.GuardedStacApiIO
    original = api_io.request

    def spy(self, href, method=None, headers=None, parameters=None):
        calls.append((method or "GET", href, parameters))
        return original(self, href, method, headers, parameters)

    monkeypatch.setattr(api_io, "request", spy)
    www["requests"].clear()
    cube = run(backend, load_stac_graph(f"{stac_api}/collections/{S2}", interval=["2022-06-02", "2022-06-03"],
                                        bands=["B04"]))
    assert cube.sizes["t"] == 1
    searches = [(href, body) for method, href, body in calls if method == "POST"]
    assert searches and searches[0][0] == f"{stac_api}/search"
    assert list(searches[0][1]["collections"]) == [S2] and searches[0][1]["datetime"].startswith("2022-06-02T00:00:00")
    assert len(searches[0][1]["bbox"]) == 4
    assert not [path for path in www["requests"] if path.endswith(".json")]  # no static item documents read


def test_item_url_common_names_and_asset_keys(backend, www):
    item = f"{www['url']}/demo/{S2}/S2_DEMO_T1_20220602/S2_DEMO_T1_20220602.json"
    day = ["2022-06-02", "2022-06-03"]
    reference = run(backend, load_collection_graph(interval=day, bands=["B04", "B08", "SCL"]))
    by_common = run(backend, load_stac_graph(item, interval=day, bands=["red", "nir", "SCL"]))
    assert list(by_common.bands.values) == ["B04", "B08", "SCL"]
    assert_same_cube(by_common, reference)
    whole_item = run(backend, load_stac_graph(item, extent=None, interval=None, bands=["B04"]))
    assert whole_item.shape[:2] == (1, 1) and whole_item.rio.crs.to_epsg() == 32632


def test_property_filters(backend, stac_api, www):
    clear = {"eo:cloud_cover": {"process_graph": {"lt": {"process_id": "lt", "result": True, "arguments": {
        "x": {"from_parameter": "value"}, "y": 5}}}}}
    for url in (f"{www['url']}/demo/{S2}/collection.json", f"{stac_api}/collections/{S2}"):
        cube = run(backend, load_stac_graph(url, properties=clear, bands=["B08"]))
        assert 0 < cube.sizes["t"] < 5


def test_result_endpoint_matches_load_collection(backend, www):
    headers = backend.auth_headers()
    url = f"{www['url']}/demo/{S2}/collection.json"
    save = {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
            "result": True}
    answers = []
    for graph in (load_stac_graph(url), load_collection_graph()):
        graph["load"].pop("result")
        response = requests.post(f"{backend.url}/result", json={"process": {"process_graph": {**graph, "save": save}}},
                                 headers=headers)
        assert response.status_code == 200, response.text
        with rasterio.MemoryFile(response.content) as memfile, memfile.open() as dataset:
            answers.append((dataset.read(), dataset.transform, dataset.crs, dataset.descriptions))
    (stac, transform, crs, names), (collection, *reference) = answers
    assert (transform, crs, names) == tuple(reference)
    np.testing.assert_array_equal(stac, collection)


# --- errors -----------------------------------------------------------------------------------------


def post_result(server: LiveServer, graph: dict) -> requests.Response:
    return requests.post(f"{server.url}/result", json={"process": {"process_graph": graph}},
                         headers=server.auth_headers())


def test_denied_host_is_a_clear_400(live_server, www):
    """The session's default backend has no fetch_allowed_hosts: nothing remote is read."""
    www["requests"].clear()
    response = post_result(live_server, load_stac_graph(f"{www['url']}/demo/{S2}/collection.json"))
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "ProcessParameterInvalid"), body
    assert "'load_stac'" in body["message"] and "host '127.0.0.1' is not allowed" in body["message"]
    assert "fetch_allowed_hosts" in body["message"]
    assert www["requests"] == []  # never contacted


def test_own_api_root_is_always_allowed(live_server):
    """The backend's own URLs need no allow-list entry (our collection lists no items: no data)."""
    response = post_result(live_server, load_stac_graph(f"{live_server.url}/collections/{S2}"))
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "ProcessParameterInvalid"), body
    assert "no data" in body["message"] and "not allowed" not in body["message"]


@pytest.mark.parametrize("name, fragment", [("file", "'file://'"),
                                            ("metadata", "host '169.254.169.254' is not allowed"),
                                            ("other-host", "host 'localhost' is not allowed")])
def test_forbidden_asset_hrefs_are_refused_before_reading(backend, www, name, fragment):
    response = post_result(backend, load_stac_graph(f"{www['url']}/evil/{name}.json", bands=["B04"],
                                                    interval=["2022-06-02", "2022-06-03"]))
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "ProcessParameterInvalid"), body
    assert fragment in body["message"]


@pytest.mark.parametrize("arguments, fragment", [
    ({"temporal_extent": ["2021-01-01", "2021-02-01"]}, "no data"),
    ({"spatial_extent": {"west": 0, "south": 0, "east": 1, "north": 1}}, "no data"),
    ({"bands": ["B99"]}, "band 'B99' does not exist"),
    ({"temporal_extent": ["2022-06-10", "2022-06-01"]}, "the interval is empty"),
])
def test_loading_errors_name_load_stac(backend, www, stac_api, arguments, fragment):
    for url in (f"{www['url']}/demo/{S2}/collection.json", f"{stac_api}/collections/{S2}"):
        graph = load_stac_graph(url)
        graph["load"]["arguments"].update(arguments)
        with pytest.raises(errors.ProcessParameterInvalid) as info:
            run(backend, graph)
        assert "'load_stac'" in info.value.message and fragment in info.value.message, info.value.message


def test_not_stac_and_missing_documents(backend, www):
    for url, fragment in ((f"{www['url']}/demo/nothing.json", "answered HTTP 404"),
                          (f"{www['url']}/demo/{S2}/S2_DEMO_T1_20220602/B04.tif", "not UTF-8 text")):
        with pytest.raises(errors.ProcessParameterInvalid) as info:
            run(backend, load_stac_graph(url))
        assert fragment in info.value.message, info.value.message


def test_sync_pixel_limit_applies(tmp_path_factory, catalog, www):
    server = make_backend(tmp_path_factory, catalog, fetch_allowed_hosts=["127.0.0.1"], sync_max_pixels=1000)
    try:
        response = post_result(server, load_stac_graph(f"{www['url']}/demo/{S2}/collection.json"))
        body = response.json()
        assert (response.status_code, body["code"]) == (400, "ProcessGraphComplexity"), body
        assert "load_stac" in body["message"]
    finally:
        server.stop()



@pytest.mark.parametrize("kind", ["static", "api", "item"])
def test_common_names_for_ndvi_defaults(backend, www, stac_api, kind):
    """load_stac's bands carry their common names too (from the collection, or from an item's assets), so
    ndvi without nir/red works on them (issue 9, item 3)."""
    urls = {"static": f"{www['url']}/demo/{S2}/collection.json", "api": f"{stac_api}/collections/{S2}",
            "item": f"{www['url']}/demo/{S2}/S2_DEMO_T1_20220602/S2_DEMO_T1_20220602.json"}
    day = ["2022-06-02", "2022-06-03"]
    graph = load_stac_graph(urls[kind], interval=day, bands=["SCL", "B08", "B04"])
    cube = run(backend, graph)
    assert list(cube.bands.values) == ["SCL", "B08", "B04"]
    assert list(cube.common_name.values) == ["", "nir", "red"]
    graph["load"].pop("result")
    graph["ndvi"] = {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}, "result": True}
    ndvi = run(backend, graph)
    reference = run(backend, load_collection_graph(interval=day))
    red, nir = reference.sel(bands="B04").values, reference.sel(bands="B08").values
    np.testing.assert_array_equal(ndvi.values, (nir - red) / (nir + red))
