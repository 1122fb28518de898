"""The real openEO JS client (@openeo/js-client, pinned in tests/js/package.json) under Node against a real HTTP server.

tests/js/client_calls.mjs makes the client calls and prints one JSON report; the tests here assert its values.
Its batch-job steps run on the session's job runner (a Dask LocalCluster) and store the GeoTIFF they downloaded
without a token in a temp dir, which the tests open with rasterio.
Node and npm are required; the pinned client is installed with `npm ci` when tests/js/node_modules is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import rasterio

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "client_calls.mjs"
CLIENT_PACKAGE = JS_DIR / "node_modules" / "@openeo" / "js-client" / "package.json"
S2 = "SENTINEL2_L2A_DEMO"
DEM = "DEM_DEMO"
UDP_ID = "js_plus_one"  # as in client_calls.mjs
UDP_GRAPH = {"add1": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": 1}, "result": True}}


def _pinned_client_version() -> str:
    return json.loads((JS_DIR / "package.json").read_text())["dependencies"]["@openeo/js-client"]


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with the pinned JS client installed in tests/js/node_modules."""
    node_exe, npm_exe = shutil.which("node"), shutil.which("npm")
    if not node_exe or not npm_exe:
        pytest.fail(
            "test_js_client needs Node.js (>= 18) and npm on PATH "
            f"(found node={node_exe!r}, npm={npm_exe!r}); install them or run scripts/ensure-test-tools.sh",
            pytrace=False,
        )
    version = subprocess.run([node_exe, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 18:
        pytest.fail(f"test_js_client needs Node.js >= 18, found {version}", pytrace=False)
    if not CLIENT_PACKAGE.is_file():
        try:
            install = subprocess.run(
                [npm_exe, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=JS_DIR, capture_output=True, text=True, timeout=600,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"`npm ci` in {JS_DIR} timed out after 600 s", pytrace=False)
        if install.returncode != 0 or not CLIENT_PACKAGE.is_file():
            pytest.fail(f"`npm ci` in {JS_DIR} failed (exit {install.returncode}):\n{install.stdout}\n{install.stderr}",
                        pytrace=False)
    installed = json.loads(CLIENT_PACKAGE.read_text())["version"]
    if installed != _pinned_client_version():
        pytest.fail(f"tests/js/node_modules has @openeo/js-client {installed}, package.json pins "
                    f"{_pinned_client_version()}: run `npm ci` in {JS_DIR}", pytrace=False)
    return node_exe


@pytest.fixture(scope="module")
def download_dir(tmp_path_factory) -> Path:
    """Where client_calls.mjs stores the batch-job result it downloaded (OPENEO_JS_DOWNLOAD_DIR)."""
    return tmp_path_factory.mktemp("js-download")


@pytest.fixture(scope="module")
def js_run(node, live_server, job_runner, download_dir):
    """Runs client_calls.mjs once for the module with a fresh user: (report, user name, completed process)."""
    name, password = live_server.new_user()
    try:
        completed = subprocess.run(
            [node, str(SCRIPT), live_server.url, name, password, live_server.root],
            cwd=JS_DIR, capture_output=True, text=True, timeout=240,
            env={**os.environ, "NODE_NO_WARNINGS": "1", "OPENEO_JS_DOWNLOAD_DIR": str(download_dir),
                 "OPENEO_JS_JOB_TIMEOUT": "120"},
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"client_calls.mjs timed out after 240 s; stderr:\n{exc.stderr}", pytrace=False)
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"client_calls.mjs printed no JSON report (exit {completed.returncode}).\n"
                    f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}", pytrace=False)
    return report, name, completed


@pytest.fixture(scope="module")
def report(js_run) -> dict:
    return js_run[0]


def result(report: dict, step: str):
    """The result of one step of the report; fails with the step's error if the call threw."""
    entry = report["steps"].get(step)
    assert entry is not None, f"step {step!r} did not run; steps: {list(report['steps'])}"
    assert "error" not in entry, f"JS client call {step!r} failed: {entry['error']}"
    assert not entry.get("unexpected_success"), f"JS client call {step!r} succeeded but should have failed"
    return entry["result"]


def test_script_ran_without_failures(js_run):
    report, _, completed = js_run
    assert report["client_version"] == _pinned_client_version()
    assert completed.returncode == 0 and report["failures"] == [], (
        f"client_calls.mjs exit {completed.returncode}; failures:\n" + "\n".join(report["failures"])
        if report["failures"] else f"client_calls.mjs exit {completed.returncode}; stderr:\n{completed.stderr}")


def test_connect_and_capabilities(report, live_server):
    connect = result(report, "connect")
    assert connect["base_url"].rstrip("/") == live_server.url
    assert connect["api_version"] == "1.2.0"
    assert connect["backend_version"] and connect["title"] and connect["id"]
    # Given the versioned URL, the client first probes <url>/.well-known/openeo (served only at the server root),
    # warns and connects directly: harmless. Given the server root, version discovery picks the 1.2 API silently.
    discovered = result(report, "connect_discovery")
    assert discovered["base_url"].rstrip("/") == live_server.url
    assert discovered["api_version"] == "1.2.0"
    assert report["steps"]["connect_discovery"]["warnings"] == []
    # hasFeature() is derived from the endpoints list of GET /.
    features = result(report, "capabilities")
    required = {"capabilities", "listFileTypes", "listCollections", "describeCollection", "listProcesses",
                "describeProcess", "authenticateBasic", "describeAccount", "listUserProcesses", "describeUserProcess",
                "getUserProcess", "setUserProcess", "replaceUserProcess", "deleteUserProcess",
                "listJobs", "createJob", "describeJob", "updateJob", "deleteJob", "estimateJob", "debugJob",
                "startJob", "stopJob", "listResults"}
    assert {name for name in required if not features[name]} == set()
    assert required <= set(connect["features"])


def test_no_client_warnings(report):
    """Apart from the well-known probe of `connect` with the versioned URL, the client logs no warnings."""
    warnings = {step: entry["warnings"] for step, entry in report["steps"].items()
                if entry["warnings"] and step != "connect"}
    assert warnings == {}


def test_authentication_and_account(js_run):
    report, name, _ = js_run
    auth = result(report, "authenticate")
    assert auth == {"authenticated": True, "provider_type": "basic", "display_name": name, "bearer_prefix": "basic//"}
    account = result(report, "describe_account")
    assert account["name"] == name
    assert isinstance(account["user_id"], str) and account["user_id"]


def test_wrong_password_is_credentials_invalid(report):
    error = result(report, "authenticate_wrong_password")
    assert error["status"] == 403, error
    assert error["code"] == "CredentialsInvalid", error
    assert error["message"], error


def test_collections(report):
    listing = result(report, "list_collections")
    assert {S2, DEM} <= set(listing["ids"]), listing["ids"]
    assert listing["links_is_array"]
    for collection in listing["collections"]:
        # What the Web Editor uses as load_collection defaults.
        assert collection["title"] and collection["license"], collection
        assert len(collection["bbox"]) == 4, collection
        assert len(collection["interval"]) == 2, collection

    s2 = result(report, "describe_collection")
    assert s2["id"] == S2 and s2["type"] == "Collection"
    assert s2["dimensions"]["t"] == "temporal"
    assert s2["dimensions"]["x"] == s2["dimensions"]["y"] == "spatial"
    assert s2["band_values"] == ["B02", "B03", "B04", "B08", "B11", "SCL"]
    assert [b["name"] for b in s2["eo_bands"]] == ["B02", "B03", "B04", "B08", "B11", "SCL"]
    assert [b["common_name"] for b in s2["eo_bands"]][:4] == ["blue", "green", "red", "nir"]

    missing = result(report, "describe_collection_missing")
    assert (missing["status"], missing["code"]) == (404, "CollectionNotFound"), missing


REQUIRED_PROCESSES = {"load_collection", "save_result", "ndvi", "reduce_dimension", "add", "subtract", "multiply",
                      "divide", "power"}


def test_all_process_pages(report):
    """Following the `next` links, every process is there exactly once."""
    paged = result(report, "paginate_processes")
    assert REQUIRED_PROCESSES <= set(paged["ids"])
    assert len(set(paged["ids"])) == paged["count"], "duplicate process ids across pages"


def test_processes(report):
    # Connection.listProcesses() (used by describeProcess, buildProcess and the Web Editor) sends
    # GET /processes?limit=50 and reads only that first page, ignoring `next` links. So every process must be
    # on that page, i.e. the backend must not cut /processes at the client's limit.
    listing = result(report, "list_processes")
    ids = set(listing["ids"])
    assert len(ids) == listing["count"], "duplicate process ids"
    missing = REQUIRED_PROCESSES - ids
    assert not missing, (f"listProcesses() saw {listing['count']} processes (GET /processes?limit=50, first page "
                         f"only) and misses {sorted(missing)}")
    for process_id, details in listing["details"].items():
        assert details is not None, process_id
        assert details["summary"] and details["has_description"], (process_id, details)
        assert details["has_returns_schema"], (process_id, details)
    assert listing["details"]["load_collection"]["parameters"][:2] == ["id", "spatial_extent"]
    assert {"data", "format"} <= set(listing["details"]["save_result"]["parameters"])
    assert "reducer" in listing["details"]["reduce_dimension"]["parameters"]
    ndvi = result(report, "describe_process")
    assert ndvi is not None, "describeProcess('ndvi') found nothing (it looks in listProcesses())"
    assert ndvi["id"] == "ndvi" and ndvi["parameters"][0] == "data"


def test_file_types(report):
    types = result(report, "list_file_types")
    # The JS client upper-cases the format names.
    assert {"GTIFF", "NETCDF"} <= set(types["output"]), types["output"]
    assert types["lookup_gtiff"] and types["lookup_netcdf"]


def test_validation(report):
    validation = result(report, "validate_process")
    if "skipped" in validation:
        pytest.skip(validation["skipped"])
    assert validation == {"errors": []}


def test_user_defined_process_round_trip(report):
    expected = {
        "id": UDP_ID,
        "summary": "x + 1",
        "description": "Adds one to a number.",
        "parameters": [{"name": "x", "description": "A number.", "schema": {"type": "number"}}],
        "returns": {"description": "x plus one", "schema": {"type": "number"}},
        "process_graph": UDP_GRAPH,
    }
    stored = result(report, "set_user_process")
    assert stored == {"class": "UserProcess", **expected}

    listing = result(report, "list_user_processes")
    assert listing == {"ids": [UDP_ID], "classes": ["UserProcess"], "summaries": ["x + 1"]}

    assert result(report, "get_user_process") == {"class": "UserProcess", **expected}
    assert result(report, "replace_user_process") == {"class": "UserProcess", **expected, "summary": "x plus one"}

    assert result(report, "delete_user_process") == {"registry_has_process": False}
    assert result(report, "list_user_processes_after_delete") == {"ids": []}
    gone = result(report, "get_user_process_after_delete")
    assert (gone["status"], gone["code"]) == (404, "ProcessGraphNotFound"), gone


def test_batch_job_flow(report):
    """createJob -> listJobs -> updateJob -> startJob -> describeJob polling -> listResults -> debugJob -> deleteJob."""
    created = result(report, "create_job")
    assert created["class"] == "Job" and created["id"] and created["status"] == "created"
    assert created["title"] == "JS NDVI composite"
    assert created["process_graph_nodes"] == ["load", "ndvi", "mean", "save"]
    job_id = created["id"]

    listing = result(report, "list_jobs")
    assert job_id in listing["ids"] and listing["classes"] == ["Job"]
    updated = result(report, "update_job")
    assert updated == {"description": "updated by client_calls.mjs", "title": "JS NDVI composite", "status": "created"}

    started = result(report, "start_job")
    assert started["status"] in ("queued", "running", "finished")
    polled = result(report, "poll_job")
    assert polled["status"] == "finished", polled
    assert polled["statuses"][-1] == "finished" and set(polled["statuses"]) <= {"queued", "running", "finished"}
    assert polled["progress"] == 100
    assert polled["created"].endswith("Z") and polled["updated"] >= polled["created"]
    assert polled["usage_duration"]["unit"] == "seconds" and polled["usage_duration"]["value"] > 0

    results = result(report, "list_results")
    assert results["type"] == "Collection" and results["id"] == job_id and results["stac_version"].startswith("1.")
    by_type = {asset["type"]: asset for asset in results["assets"]}
    assert set(by_type) == {"image/tiff; application=geotiff; profile=cloud-optimized", "image/png"}, by_type
    tif = by_type["image/tiff; application=geotiff; profile=cloud-optimized"]
    assert tif["roles"] == ["data"] and tif["epsg"] == 32632 and tif["shape"] == [84, 96]
    assert by_type["image/png"]["roles"] == ["overview"]

    logs = result(report, "debug_job")
    assert logs["messages"][0].startswith("Queued; ") and logs["messages"][-1].startswith("Finished in"), logs["messages"]
    assert logs["has_times"] and logs["ids"] == sorted(logs["ids"], key=int)
    assert logs["again"] == 0 and logs["errors"] == []

    assert result(report, "delete_job") == {"listed": False}
    gone = result(report, "get_job_after_delete")
    assert (gone["status"], gone["code"]) == (404, "JobNotFound"), gone


def test_batch_job_estimate(report):
    estimate = result(report, "estimate_job")
    if "skipped" in estimate:
        pytest.skip(estimate["skipped"])
    assert set(estimate) & {"costs", "duration", "size"}, estimate


def test_batch_job_result_downloads_without_token(report):
    """The asset href works without Authorization (signed URL): a GeoTIFF of exactly the advertised size."""
    download = result(report, "download_result")
    assert download["status"] == 200 and download["head_status"] == 200, download
    assert download["content_type"].startswith("image/tiff"), download
    assert download["cors"] == "*"
    assert download["bytes"] == download["asset_size"] == int(download["content_length"]) \
        == int(download["head_content_length"]), download
    assert download["magic"] in ([0x49, 0x49, 0x2A, 0x00], [0x4D, 0x4D, 0x00, 0x2A]), download  # II*\0 / MM\0*
    assert download["unsigned_status"] in (401, 403), download  # without the signature: refused

    saved = Path(download["saved"])
    assert saved.stat().st_size == download["bytes"]
    with rasterio.open(saved) as tif:
        assert tif.driver == "GTiff" and tif.crs.to_epsg() == 32632
        assert (tif.height, tif.width, tif.count) == (84, 96, 1)
        assert tif.transform.c == 679720 and tif.transform.f == 5151920
        values = tif.read(1, masked=True)
    assert -1 <= values.min() < values.max() <= 1  # a mean NDVI


def test_timings_reported(report):
    """Each call's duration is in the report; none should take long on a local server."""
    slow = {step: entry["ms"] for step, entry in report["steps"].items()
            if entry["ms"] > 10_000 and step != "poll_job"}  # the batch job computes while it is polled
    assert slow == {}
