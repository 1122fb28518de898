"""UDFs, web services, shared UDPs and provenance through the real openEO JS client (tests/js/*_calls.mjs
under Node): the client sees the features, lists the UDF runtime and the XYZ service type, downloads a
run_udf result (checked by value against the same cube through the Python client), creates, renames,
lists and deletes services, gets a tile (pixel-identical to the same service made through the Python
client), reads the log entry of a tile that failed; calls another user's published UDP by its URL,
finds it in the public catalogue, and reads a batch job's provenance (STAC processing extension)."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import openeo
import pytest
import requests
import xarray as xr

from backend.demo import DEMO_S2_COLLECTION
from tests.api.test_web_services import AREA, INTERVAL, TILE, _decode, _tile_url
from tests.e2e.test_js_client import JS_DIR, node  # noqa: F401  (the fixture: Node with the pinned client)
from tests.e2e.test_provenance import PROCESSING_EXTENSION
from tests.e2e.test_shared_udps import call, publish

SCRIPT = JS_DIR / "capability_calls.mjs"
PLUS_ONE = """
from openeo.udf import XarrayDataCube

def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
    return XarrayDataCube(cube.get_array() + 1)
"""


def _graphs(connection) -> dict[str, dict]:
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=INTERVAL,
                                      bands=["B04", "B08"])
    return {
        "udf_graph.json": cube.apply(openeo.UDF(PLUS_ONE, runtime="Python")).save_result("netCDF"),
        "service_graph.json": cube.ndvi().reduce_dimension("t", "mean"),
        "bands_graph.json": cube.reduce_dimension("t", "mean"),
    }


def test_js_client_udfs_and_web_services(node, live_server, tmp_path):  # noqa: F811
    name, password = live_server.new_user()
    connection = openeo.connect(live_server.url).authenticate_basic(name, password)
    for file, cube in _graphs(connection).items():
        (tmp_path / file).write_text(json.dumps(cube.flat_graph()))
    (tmp_path / "tile.txt").write_text("/".join(map(str, TILE)))
    completed = subprocess.run([node, str(SCRIPT), live_server.url, name, password, str(tmp_path)], cwd=JS_DIR,
                               capture_output=True, text=True, timeout=300, env={**os.environ, "NODE_NO_WARNINGS": "1"})
    report = json.loads(completed.stdout)
    assert completed.returncode == 0 and "error" not in report, (report, completed.stderr)

    assert all(report["features"].values()), report["features"]
    assert list(report["runtimes"]) == ["Python"] and "openeo" in next(
        iter(report["runtimes"]["Python"]["versions"].values()))["libraries"]
    assert "XYZ" in report["service_types"]

    reference = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=INTERVAL,
                                           bands=["B04", "B08"])
    reference.download(tmp_path / "plain.nc", format="netCDF")
    with xr.open_dataset(tmp_path / "udf.nc") as got, xr.open_dataset(tmp_path / "plain.nc") as want:
        for band in ("B04", "B08"):
            assert np.isfinite(want[band].values).any()
            np.testing.assert_allclose(got[band].values, want[band].values + 1, rtol=1e-6)

    service = report["service"]
    assert service["type"] == "XYZ" and service["enabled"] is True and service["configuration"] == {"range": [-1, 1]}
    assert report["renamed"] == "NDVI renamed"
    assert report["tile"] == {"status": 200, "type": "image/png"}
    same = _graphs(connection)["service_graph.json"].tiled_viewing_service(type="XYZ", configuration={"range": [-1, 1]})
    python_tile = _decode(requests.get(_tile_url(same, *TILE)).content)
    js_tile = _decode((tmp_path / "tile.png").read_bytes())
    assert js_tile.shape == (4, 256, 256) and (js_tile[3] == 255).mean() > 0.5
    np.testing.assert_array_equal(js_tile, python_tile)

    assert report["failing_tile_status"] == 400
    [entry] = report["logs"]
    assert entry["level"] == "error" and entry["code"] == "BadRequest" and "one band (grey)" in entry["message"]
    assert service["id"] in report["listed"] and len(report["listed"]) == 2
    assert report["after_delete"] == [service["id"]]
    assert (report["deleted_lookup"]["status"], report["deleted_lookup"]["code"]) == (404, "ServiceNotFound")


@pytest.mark.usefixtures("job_runner")
def test_js_client_calls_a_published_udp_and_reads_provenance(node, live_server, tmp_path):  # noqa: F811
    alice = openeo.connect(live_server.url).authenticate_basic(*live_server.new_user())
    publish(alice)
    url = next(link["href"] for link in alice.get("/process_graphs/fahrenheit").json()["links"]
               if link["rel"] == "canonical")
    bob, password = live_server.new_user()
    (tmp_path / "call_graph.json").write_text(json.dumps(call("fahrenheit", url, 100)))
    job_cube = _graphs(alice)["service_graph.json"].save_result("GTiff")
    (tmp_path / "job_graph.json").write_text(json.dumps(job_cube.flat_graph()))
    completed = subprocess.run([node, str(JS_DIR / "sharing_calls.mjs"), live_server.url, bob, password,
                                str(tmp_path)], cwd=JS_DIR, capture_output=True, text=True, timeout=300,
                               env={**os.environ, "NODE_NO_WARNINGS": "1"})
    report = json.loads(completed.stdout)
    assert completed.returncode == 0 and "error" not in report, (report, completed.stderr)

    assert report["udp_result"] == pytest.approx(212)
    assert {"id": "fahrenheit", "owner": alice.describe_account()["name"], "href": url} in report["catalogue"]
    assert report["job_status"] == "finished"
    assert PROCESSING_EXTENSION in report["results"]["stac_extensions"]
    [processor] = report["results"]["providers"]
    assert processor["processing:expression"]["expression"] == {"process_graph": job_cube.flat_graph()}
    assert processor["processing:software"]["numpy"] == np.__version__
    assert processor["openeo:inputs"] and all(entry["collection"] == DEMO_S2_COLLECTION
                                              for entry in processor["openeo:inputs"])
