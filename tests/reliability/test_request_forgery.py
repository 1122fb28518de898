"""Server-side request forgery: graphs that make the server read other hosts.

Every URL-taking argument of a process graph (load_stac, load_url, aggregate_spatial's and load_geojson's
GeoJSON, run_udf's code, a process namespace) with a literal loopback, private, CGNAT, link-local or
cloud-metadata address is refused with an openEO error before any connection, also when the operator
allows every host (``fetch_allowed_hosts: ["*"]`` still needs public addresses). Redirects to a
forbidden host are not followed, neither for STAC documents nor for the pixel reads GDAL does (GDAL's
own HTTP client follows any redirect; load_stac's pixels are read through the fetch policy instead,
backend/processing/loading/guarded_reads.py), and a DNS answer that changes between the check and the
read changes nothing: the read connects only to the checked address.

Hosts here are loopback servers that count their requests: 127.0.0.1 is on the allow-list, 127.0.0.2
stands in for a forbidden host. Sockets are guarded (pytest-socket: loopback only), and GDAL's own HTTP
is pointed at a dead loopback proxy where a test names a non-loopback address, so a broken policy fails
the test instead of sending a packet elsewhere.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest
import requests

from backend.app import create_app
from backend.demo import DEMO_S2_COLLECTION
from backend.processing.fetching import transport
from backend.settings import load_settings
from tests.conftest import LiveServer
from tests.support.counting_host import Host

LOOPBACK = ["127.0.0.0/8", "::1"]
pytestmark = pytest.mark.allow_hosts(LOOPBACK)

EXTENT = {"west": 679720, "east": 680080, "south": 5151560, "north": 5151920, "crs": 32632}
DAY = ["2022-06-02", "2022-06-03"]
ITEM_DIR = f"{DEMO_S2_COLLECTION}/S2_DEMO_T1_20220602"
INTERNAL = ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "169.254.169.254", "[::1]",
            "[fd00::1]", "[::ffff:169.254.169.254]", "0.0.0.0"]


# --- documents -------------------------------------------------------------------------------------


def item_document(demo_catalog_dir: Path, asset_base: str) -> bytes:
    """The demo item of 2022-06-02, its assets at ``asset_base`` (no links: nothing else is read)."""
    item = json.loads(next((demo_catalog_dir / ITEM_DIR).glob("*.json")).read_text())
    for key, asset in item["assets"].items():
        asset["href"] = f"{asset_base}/{key}.tif"
    item["links"] = []
    return json.dumps(item).encode()


def cog(demo_catalog_dir: Path, band: str = "B04") -> bytes:
    return (demo_catalog_dir / ITEM_DIR / f"{band}.tif").read_bytes()


def load_stac(url: str) -> dict:
    return {"load": {"process_id": "load_stac", "result": True, "arguments": {
        "url": url, "spatial_extent": EXTENT, "temporal_extent": DAY, "bands": ["B04"]}}}


def saved(graph: dict) -> dict:
    """``graph`` (one result node 'load') written as a GeoTIFF, so its pixels are read."""
    return {"load": {**graph["load"], "result": False},
            "save": {"process_id": "save_result", "result": True,
                     "arguments": {"data": {"from_node": "load"}, "format": "GTiff"}}}


_headers: dict[str, dict] = {}


def headers_of(server: LiveServer) -> dict:
    """One user per backend (a new user per request would cost a password hash each time)."""
    if server.url not in _headers:
        _headers[server.url] = server.auth_headers()
    return _headers[server.url]


def post_result(server: LiveServer, graph: dict) -> requests.Response:
    return requests.post(f"{server.url}/result", json={"process": {"process_graph": graph}},
                         headers=headers_of(server), timeout=120)


def error_of(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) >= {"id", "code", "message", "links"}, body
    return response.status_code, body["code"], body["message"]


# --- fixtures -----------------------------------------------------------------------------------------


def make_backend(tmp_path_factory, demo_catalog_dir: Path, allowed: list[str]) -> LiveServer:
    data_dir = tmp_path_factory.mktemp("ssrf")
    (data_dir / "demo-catalog").symlink_to(demo_catalog_dir)  # no second generation
    return LiveServer(create_app(load_settings(data_dir=data_dir, fetch_allowed_hosts=allowed)))


@pytest.fixture(scope="module")
def backend(tmp_path_factory, demo_catalog_dir):
    """127.0.0.1 and localhost are allowed by exact name (so any address); 127.0.0.2 is not."""
    server = make_backend(tmp_path_factory, demo_catalog_dir, ["127.0.0.1", "localhost"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def open_backend(tmp_path_factory, demo_catalog_dir):
    """Every host allowed by wildcard: only public addresses may be read."""
    server = make_backend(tmp_path_factory, demo_catalog_dir, ["*"])
    yield server
    server.stop()


@pytest.fixture
def allowed():
    host = Host("127.0.0.1")
    yield host
    host.close()


@pytest.fixture
def forbidden(demo_catalog_dir):
    """127.0.0.2: not on the allow-list; serves a valid COG, so any read that reaches it would succeed."""
    host = Host("127.0.0.2")
    host.routes["/B04.tif"] = cog(demo_catalog_dir)
    yield host
    host.close()


@pytest.fixture(scope="module", autouse=True)
def gdal_trap():
    """GDAL's own HTTP client (libcurl, which pytest-socket cannot guard) sent to a loopback 'proxy' that
    counts, for the whole module and the Dask workers it starts: load_stac's pixels must never go through
    it, and nothing leaves the machine if they do."""
    trap = Host("127.0.0.1")
    patch = pytest.MonkeyPatch()
    for name in ("GDAL_HTTP_PROXY", "GDAL_HTTPS_PROXY"):  # GDAL's settings (read from the environment)
        patch.setenv(name, trap.url)
    for name in ("no_proxy", "NO_PROXY"):
        patch.delenv(name, raising=False)
    yield trap
    patch.undo()
    trap.close()


@pytest.fixture
def gdal_http_tripwire(gdal_trap):
    gdal_trap.hits.clear()
    return gdal_trap


# --- literal internal addresses in every URL-taking argument ------------------------------------------


def url_arguments(url: str) -> dict[str, dict]:
    """A graph per URL-taking argument, each reading ``url``."""
    cube = {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "spatial_extent": EXTENT, "temporal_extent": DAY, "bands": ["B04"]}}
    return {
        "load_stac.url": load_stac(url),
        "load_url.url": {"load": {"process_id": "load_url", "result": True,
                                  "arguments": {"url": url, "format": "GeoJSON"}}},
        "aggregate_spatial.geometries": {"cube": cube, "agg": {
            "process_id": "aggregate_spatial", "result": True, "arguments": {
                "data": {"from_node": "cube"}, "geometries": url, "reducer": {"process_graph": {"m": {
                    "process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}}},
        "load_geojson.data": {"load": {"process_id": "load_geojson", "result": True,
                                       "arguments": {"data": url, "properties": []}}},
        "run_udf.udf": {"cube": cube, "udf": {"process_id": "run_udf", "result": True, "arguments": {
            "data": {"from_node": "cube"}, "udf": url, "runtime": "Python"}}},
        "namespace": {"p": {"process_id": "some_process", "namespace": url, "arguments": {}, "result": True}},
    }


REFUSALS = {  # what the message must say, by argument
    "load_stac.url": r"non-public address|not allowed",
    "load_url.url": r"non-public address|not allowed",
    "namespace": r"non-public address|not allowed",
    "aggregate_spatial.geometries": r"URLs are not fetched",
    "load_geojson.data": r"load_url",
    "run_udf.udf": r"URLs are not supported|none of the allowed forms \(file-path, udf-code\)",
}


@pytest.mark.parametrize("address", INTERNAL)
def test_literal_internal_addresses_are_refused_in_every_url_argument(open_backend, allowed, address,
                                                                      gdal_http_tripwire):
    """Even with every host allowed, no URL-taking argument reads a non-public address: each answers 400
    with an openEO error that says why, and nothing is contacted (a loopback target counts its hits)."""
    port = allowed.port if address == "127.0.0.1" else 80
    url = f"http://{address}:{port}/latest/meta-data/iam/security-credentials/"
    found = {}
    for argument, graph in url_arguments(url).items():
        status, code, message = error_of(post_result(open_backend, graph))
        found[argument] = (status, code)
        assert status == 400 and code in ("ProcessParameterInvalid", "ProcessUnsupported"), (argument, message)
        assert re.search(REFUSALS[argument], message), (argument, message)
    assert allowed.hits == [] and gdal_http_tripwire.hits == []
    assert len(found) == 6


def test_not_allowed_hosts_are_refused_by_validation_without_a_connection(backend, forbidden):
    """POST /validation names the refused host for load_stac and load_url, and reads nothing."""
    url = f"{forbidden.url}/B04.tif"
    for argument in ("load_stac.url", "load_url.url"):
        response = requests.post(f"{backend.url}/validation", json={"process_graph": url_arguments(url)[argument]},
                                 headers=headers_of(backend), timeout=60)
        errors = response.json()["errors"]
        assert any("host '127.0.0.2' is not allowed" in e["message"] for e in errors), (argument, errors)
    assert forbidden.hits == []


def test_host_resolving_to_a_private_address_is_refused(open_backend, monkeypatch):
    """A name allowed by the wildcard whose DNS answer is private (here: the metadata address) is refused."""
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if host == "metadata.example.org":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    status, code, message = error_of(post_result(open_backend, load_stac("http://metadata.example.org/item.json")))
    assert (status, code) == (400, "ProcessParameterInvalid")
    assert "non-public address 169.254.169.254" in message


# --- redirects ----------------------------------------------------------------------------------------


def test_stac_document_redirect_to_a_forbidden_host_is_not_followed(backend, allowed, forbidden):
    forbidden.routes["/item.json"] = b"{}"
    allowed.routes["/item.json"] = ("redirect", f"{forbidden.url}/item.json")
    status, code, message = error_of(post_result(backend, load_stac(f"{allowed.url}/item.json")))
    assert (status, code) == (400, "ProcessParameterInvalid")
    assert "redirects to another host (127.0.0.2)" in message and "'load_stac'" in message
    assert forbidden.hits == []


def test_pixel_read_redirect_to_a_forbidden_host_is_not_followed(backend, allowed, forbidden, demo_catalog_dir):
    """The item is fine, its asset redirects to 127.0.0.2: GDAL would follow; the guarded read does not."""
    allowed.routes["/item.json"] = item_document(demo_catalog_dir, allowed.url)
    allowed.routes["/B04.tif"] = ("redirect", f"{forbidden.url}/B04.tif")
    response = post_result(backend, saved(load_stac(f"{allowed.url}/item.json")))
    assert forbidden.hits == []
    status, code, message = error_of(response)
    assert (status, code) == (400, "ProcessParameterInvalid"), message
    assert "redirects to another host (127.0.0.2)" in message and "'load_stac'" in message
    assert "/B04.tif" in allowed.hits


def test_pixel_read_redirect_to_the_metadata_address_is_refused(backend, allowed, demo_catalog_dir,
                                                                gdal_http_tripwire):
    allowed.routes["/item.json"] = item_document(demo_catalog_dir, allowed.url)
    allowed.routes["/B04.tif"] = ("redirect", "http://169.254.169.254/latest/meta-data/B04.tif")
    status, code, message = error_of(post_result(backend, saved(load_stac(f"{allowed.url}/item.json"))))
    assert (status, code) == (400, "ProcessParameterInvalid"), message
    assert "redirects to another host (169.254.169.254)" in message
    assert gdal_http_tripwire.hits == []


def test_same_host_pixel_redirect_is_followed(backend, allowed, demo_catalog_dir, gdal_http_tripwire):
    """A redirect on the same host (a CDN path, a signed URL) still reads, through the guarded reader only."""
    allowed.routes["/item.json"] = item_document(demo_catalog_dir, allowed.url)
    allowed.routes["/B04.tif"] = ("redirect", "/store/B04.tif")
    allowed.routes["/store/B04.tif"] = cog(demo_catalog_dir)
    response = post_result(backend, saved(load_stac(f"{allowed.url}/item.json")))
    assert response.status_code == 200, response.text[:500]
    assert response.content[:4] in (b"II*\x00", b"MM\x00*")
    assert "/store/B04.tif" in allowed.hits and gdal_http_tripwire.hits == []


# --- DNS answers that change between check and read -----------------------------------------------------


@pytest.fixture
def twin_hosts(demo_catalog_dir):
    """Two servers on one port: 127.0.0.2 (the address the check sees) and 127.0.0.1 (where 'localhost'
    really resolves, for Python and for GDAL's libcurl alike)."""
    for _ in range(20):
        checked = Host("127.0.0.2")
        try:
            other = Host("127.0.0.1", checked.port)
            break
        except OSError:
            checked.close()
    else:
        pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")
    for host in (checked, other):
        host.routes["/B04.tif"] = cog(demo_catalog_dir)
    yield checked, other
    checked.close()
    other.close()


def test_read_connects_only_to_the_checked_address(backend, allowed, twin_hosts, demo_catalog_dir, monkeypatch):
    """The asset host's DNS answer is 127.0.0.2 when checked and 127.0.0.1 ever after (the rebinding
    attack): the pixels come from the checked address only; the other one gets no request."""
    checked, other = twin_hosts
    allowed.routes["/item.json"] = item_document(demo_catalog_dir, f"http://localhost:{checked.port}")
    real_resolve = transport.resolve
    answers: list[tuple[str, ...]] = []

    def rebinding(host: str, port: int) -> tuple[str, ...]:
        if host != "localhost":
            return real_resolve(host, port)
        answers.append(("127.0.0.2",) if not answers else ("127.0.0.1",))
        return answers[-1]

    monkeypatch.setattr(transport, "resolve", rebinding)
    started = time.monotonic()
    response = post_result(backend, saved(load_stac(f"{allowed.url}/item.json")))
    elapsed = time.monotonic() - started
    assert other.hits == []
    assert response.status_code == 200, response.text[:500]
    assert answers == [("127.0.0.2",)]  # checked once; never resolved again for the read
    assert checked.hits and all(path == "/B04.tif" for path in checked.hits)
    print(f"\nrebinding: {len(checked.hits)} range requests to the checked address, 0 elsewhere, {elapsed:.2f} s")


def test_unreadable_asset_is_a_clear_400(backend, allowed, demo_catalog_dir):
    """An asset that answers 404 was a 500 'unexpected RasterioIOError' (GDAL's error); now the user is told
    which URL answered what."""
    allowed.routes["/item.json"] = item_document(demo_catalog_dir, allowed.url)
    status, code, message = error_of(post_result(backend, saved(load_stac(f"{allowed.url}/item.json"))))
    assert (status, code) == (400, "ProcessParameterInvalid"), message
    assert f"{allowed.url}/B04.tif answered HTTP 404" in message and "'load_stac'" in message


# --- batch jobs: the pixel reads run in Dask worker processes -----------------------------------------


@pytest.fixture(scope="module")
def runner(backend, gdal_trap):  # the trap first: the worker processes inherit its environment
    from backend.jobs.runner import JobRunner

    job_runner = JobRunner(backend.services).start()
    yield job_runner
    job_runner.stop()


def run_job(server: LiveServer, graph: dict, timeout: float = 120) -> tuple[str, str]:
    """(final status, the job's error log messages)."""
    created = requests.post(f"{server.url}/jobs", json={"process": {"process_graph": graph}},
                            headers=headers_of(server), timeout=60)
    assert created.status_code == 201, created.text
    job_id = created.headers["OpenEO-Identifier"]
    assert requests.post(f"{server.url}/jobs/{job_id}/results", headers=headers_of(server),
                         timeout=60).status_code == 202
    deadline = time.monotonic() + timeout
    status = "queued"
    while time.monotonic() < deadline and status not in ("finished", "error"):
        time.sleep(0.2)
        status = requests.get(f"{server.url}/jobs/{job_id}", headers=headers_of(server), timeout=60).json()["status"]
    logs = requests.get(f"{server.url}/jobs/{job_id}/logs", headers=headers_of(server), timeout=60).json()["logs"]
    return status, " | ".join(entry["message"] for entry in logs if entry.get("level") == "error")


def test_batch_job_pixel_reads_obey_the_policy_in_the_workers(backend, runner, allowed, forbidden,
                                                              demo_catalog_dir, gdal_http_tripwire):
    """A job's pixels are read in Dask worker processes: the same-host redirect is followed there through
    the guarded reader (GDAL's own HTTP is a trap), the redirect to 127.0.0.2 ends the job in 'error'
    saying why, and 127.0.0.2 gets no request."""
    allowed.routes["/item.json"] = item_document(demo_catalog_dir, allowed.url)
    allowed.routes["/B04.tif"] = ("redirect", "/store/B04.tif")
    allowed.routes["/store/B04.tif"] = cog(demo_catalog_dir)
    status, errors = run_job(backend, saved(load_stac(f"{allowed.url}/item.json")))
    assert status == "finished", errors
    assert "/store/B04.tif" in allowed.hits and gdal_http_tripwire.hits == []

    allowed.routes["/B04.tif"] = ("redirect", f"{forbidden.url}/B04.tif")
    status, errors = run_job(backend, saved(load_stac(f"{allowed.url}/item.json")))
    assert status == "error"
    assert "redirects to another host (127.0.0.2)" in errors, errors
    assert forbidden.hits == [] and gdal_http_tripwire.hits == []


# --- files that name other files: a VRT is GDAL's own link to any URL or path --------------------


def vrt(source: str) -> bytes:
    """A 1-band VRT whose pixels come from ``source`` (GDAL recognises it by content, whatever its name)."""
    return f"""<VRTDataset rasterXSize="64" rasterYSize="64"><SRS>EPSG:32632</SRS>
  <GeoTransform>679720, 10, 0, 5151920, 0, -10</GeoTransform>
  <VRTRasterBand dataType="UInt16" band="1"><SimpleSource>
    <SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>1</SourceBand>
    <SrcRect xOff="0" yOff="0" xSize="64" ySize="64"/><DstRect xOff="0" yOff="0" xSize="64" ySize="64"/>
  </SimpleSource></VRTRasterBand></VRTDataset>""".encode()


@pytest.mark.parametrize("name, fmt", [("upload.tif", "GTiff"), ("upload.nc", "netCDF")])
@pytest.mark.parametrize("target", ["forbidden-url", "server-file"])
def test_uploaded_file_cannot_make_gdal_read_another_url_or_file(backend, forbidden, demo_catalog_dir,
                                                                gdal_http_tripwire, name, fmt, target):
    """A VRT uploaded as a GeoTIFF (or netCDF) names a forbidden URL or a file of the server (here: a COG of
    the catalog, standing in for another user's result): it is refused as not a GeoTIFF/netCDF and
    nothing is read."""
    source = f"/vsicurl/{forbidden.url}/B04.tif" if target == "forbidden-url" else \
        str(demo_catalog_dir / ITEM_DIR / "B04.tif")
    put = requests.put(f"{backend.url}/files/{name}", data=vrt(source), headers=headers_of(backend), timeout=60)
    assert put.status_code == 200, put.text
    graph = {"load": {"process_id": "load_uploaded_files", "arguments": {"paths": [name], "format": fmt}}}
    status, code, message = error_of(post_result(backend, saved(graph)))
    assert forbidden.hits == [] and gdal_http_tripwire.hits == []
    assert (status, code) == (400, "FormatUnsuitable"), message
    assert f"'{name}'" in message


def test_stac_asset_that_is_a_vrt_is_not_opened(backend, allowed, forbidden, demo_catalog_dir, gdal_http_tripwire):
    """An allowed host serves a VRT as the asset: GDAL would open it by its content and read the URL or
    server file it names itself. Only GeoTIFF and JPEG 2000 assets are opened."""
    allowed.routes["/item.json"] = item_document(demo_catalog_dir, allowed.url)
    for source in (f"/vsicurl/{forbidden.url}/B04.tif", str(demo_catalog_dir / ITEM_DIR / "B04.tif")):
        allowed.routes["/B04.tif"] = vrt(source)
        status, code, message = error_of(post_result(backend, saved(load_stac(f"{allowed.url}/item.json"))))
        assert forbidden.hits == [] and gdal_http_tripwire.hits == []
        assert (status, code) == (400, "ProcessParameterInvalid"), message
        assert "is not a GeoTIFF or JPEG 2000 file" in message and "'load_stac'" in message
