"""A graph whose collections live on different backends, through the aggregator with the real `openeo`
client (the package's federation, conftest.py: A with S2 + DEM, B with S1 + DEM, job runners, each allowing
the other's host for load_stac). The S1 load runs as a batch job on B, the rest on A reads its signed
results; values checked against the Sentinel-1 demo COGs (rasterio) and against the S2 half run on A alone."""

from __future__ import annotations

import time

import numpy as np
import openeo
import pytest
import rasterio
from openeo.rest import OpenEoApiError

from backend.demo import DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from tests.aggregator.e2e.conftest import USER
from tests.e2e.test_demo_sentinel1 import AREA, JUNE, JUNE_DATES, reference


@pytest.fixture(scope="module")
def connections(federation):
    return tuple(openeo.connect(server.url).authenticate_basic(*USER)
                 for server in (federation.aggregator, federation.a, federation.b))


def swir_mean(connection: openeo.Connection):
    """S2's SWIR band averaged over June (S2 loads on its 10 m grid)."""
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE, bands=["B11"])
    return cube.reduce_dimension("t", "mean")


def merged(connection: openeo.Connection, s1_bands=("VH",)):
    s1 = connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                    bands=list(s1_bands), fetch_metadata=False)
    swir = swir_mean(connection)  # S1's 20 m pixels onto S2's 10 m grid (each one 2 x 2), then merged
    return swir.merge_cubes(s1.reduce_dimension("t", "mean").resample_cube_spatial(swir, method="near"))


def read(path) -> tuple[np.ndarray, list[str]]:
    with rasterio.open(path) as raster:
        return raster.read().astype("float64"), list(raster.descriptions)


def part_jobs(connection: openeo.Connection) -> list[dict]:
    return [job for job in connection.list_jobs() if "federation split" in (job.get("title") or "")]


def test_s2_on_a_merged_with_s1_on_b_equals_the_computation_by_hand(connections, demo_catalog_dir, tmp_path):
    aggregator, a, b = connections
    merged(aggregator).download(tmp_path / "merged.tif", format="GTiff")
    values, bands = read(tmp_path / "merged.tif")
    assert bands == ["B11", "VH"] and values.shape == (2, 84, 96)

    swir_mean(a).download(tmp_path / "swir.tif", format="GTiff")  # the S2 half, on A alone
    np.testing.assert_array_equal(values[0], read(tmp_path / "swir.tif")[0][0])
    expected_vh = np.mean([reference(demo_catalog_dir, d, "VH") for d in JUNE_DATES], axis=0).repeat(2, 0).repeat(2, 1)
    np.testing.assert_allclose(values[1], expected_vh, rtol=1e-6)  # both June dates of B, through the part job
    assert np.ptp(10 * np.log10(values[1])) > 5 and np.isfinite(values[0]).all()

    deadline = time.monotonic() + 30  # the part job is deleted once the answer has been sent
    while part_jobs(b) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert part_jobs(b) == []


def test_the_answer_names_the_primary_backend_and_the_parts(connections):
    aggregator, _, _ = connections
    graph = merged(aggregator).save_result("GTiff").flat_graph()
    response = aggregator.post("/result", json={"process": {"process_graph": graph}}, expected_status=200)
    assert response.headers["OpenEO-Federation-Backend"] == "A"
    reason = response.headers["OpenEO-Federation-Reason"]
    assert "split" in reason and f"({DEMO_S1_COLLECTION}) on B" in reason and "as job" in reason
    assert response.content[:4] in (b"II*\x00", b"MM\x00*")  # a GeoTIFF


def test_a_part_failing_on_its_backend_is_an_openeo_error_naming_backend_and_part(connections, tmp_path):
    aggregator, _, b = connections
    with pytest.raises(OpenEoApiError) as raised:
        merged(aggregator, s1_bands=("HH",)).download(tmp_path / "never.tif", format="GTiff")
    error = raised.value
    assert (error.http_status_code, error.code) == (424, "FederationSplitPartFailed")  # a failed dependency
    assert "backend 'B'" in error.message and "loadcollection2" in error.message and DEMO_S1_COLLECTION in error.message
    assert "HH" in error.message  # the backend's own reason
    assert part_jobs(b) == []  # nothing left behind


def test_validation_says_the_graph_will_be_split(connections):
    aggregator, _, _ = connections
    graph = merged(aggregator).save_result("GTiff").flat_graph()
    document = aggregator.post("/validation", json={"process_graph": graph}, expected_status=200).json()
    assert document["errors"] == []
    assert document["federation:backends"] == ["A", "B"]
    assert document["federation:split"]["primary"] == "A"
    assert document["federation:split"]["parts"] == [
        {"node": "loadcollection2", "collection": DEMO_S1_COLLECTION, "backend": "B"}]
    assert "will be split" in document["federation:split"]["message"]

    broken = merged(aggregator, s1_bands=("HH",)).save_result("GTiff").flat_graph()
    problems = aggregator.post("/validation", json={"process_graph": broken}, expected_status=200).json()["errors"]
    assert problems and all("part 'loadcollection2'" in p["message"] for p in problems)
    assert any("HH" in p["message"] for p in problems)
