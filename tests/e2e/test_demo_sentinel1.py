"""SENTINEL1_GRD_DEMO through a real HTTP server and the real openeo client: load_collection, filter_bands,
reduce_dimension, save_result as GTiff and netCDF, /validation, a batch job read back with load_stac (the
shape of a federated graph split across backends); values checked against the COGs read with rasterio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio
import xarray as xr
from openeo.rest import OpenEoApiError
from rasterio.windows import from_bounds

from backend.demo import DEMO_S1_COLLECTION
from backend.demo import spec as S

# The openEO workflow-test area (EPSG:32632): 48 x 42 pixels of the 20 m grid.
AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]
JUNE_DATES = [d for d in S.S1_DATES if d.month == 6]  # 06-07 and 06-19
# Across the swath edge in the south-east corner of tile T1: part no data.
EDGE_AREA = {"west": 685600, "south": 5145000, "east": 687000, "north": 5146000, "crs": 32632}
QUIET = dict(max_poll_interval=0.5, print=lambda *_: None)


@pytest.fixture
def connection(live_server) -> openeo.Connection:
    return openeo.connect(live_server.url).authenticate_basic(*live_server.new_user())


def reference(catalog: Path, date, band: str, area: dict = AREA) -> np.ndarray:
    """The stored values in the area, float64, nodata as NaN."""
    path = catalog / DEMO_S1_COLLECTION / S.s1_item_id(S.TILE1, date) / f"{band}.tif"
    with rasterio.open(path) as src:
        raw = src.read(1, window=from_bounds(area["west"], area["south"], area["east"], area["north"],
                                             src.transform)).astype("float64")
        raw[raw == src.nodata] = np.nan
    return raw


def test_the_client_reads_the_collection_metadata(connection):
    cube = connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE)
    assert cube.metadata.band_names == ["VV", "VH"]
    assert [b.common_name for b in cube.metadata.band_dimension.bands] == [None, None]
    metadata = connection.describe_collection(DEMO_S1_COLLECTION)
    assert metadata["summaries"]["sar:polarizations"] == ["VV", "VH"]
    assert metadata["cube:dimensions"]["t"]["extent"] == ["2022-04-20T05:25:43Z", "2022-09-11T05:25:43Z"]


def test_netcdf_holds_the_stored_values_of_both_bands(connection, demo_catalog_dir, tmp_path):
    cube = connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                      bands=["VV", "VH"])
    cube.download(tmp_path / "s1.nc", format="netCDF")
    with xr.open_dataset(tmp_path / "s1.nc", engine="netcdf4") as ds:
        assert [str(t)[:10] for t in ds["t"].values] == [str(d) for d in JUNE_DATES]
        for band in ("VV", "VH"):
            values = ds[band].transpose("t", "y", "x").values
            expected = np.stack([reference(demo_catalog_dir, d, band) for d in JUNE_DATES])
            assert values.shape == expected.shape == (2, 42, 48)
            np.testing.assert_array_equal(values, expected)  # float32 passed through unchanged
            assert 1e-4 < np.nanmin(values) and np.nanmax(values) < 2  # -40 .. +3 dB


def test_temporal_mean_of_one_band_as_geotiff(connection, demo_catalog_dir, tmp_path):
    cube = connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE)
    cube.filter_bands(["VH"]).reduce_dimension("t", "mean").download(tmp_path / "vh.tif", format="GTiff")
    expected = np.mean([reference(demo_catalog_dir, d, "VH") for d in JUNE_DATES], axis=0)
    with rasterio.open(tmp_path / "vh.tif") as result:
        assert result.count == 1 and result.crs.to_epsg() == 32632
        assert (result.transform.c, result.transform.f, result.transform.a) == (679720, 5151920, 20)
        actual = result.read(1).astype("float64")
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
    assert np.ptp(10 * np.log10(actual)) > 5  # fields of different crops, not a flat cube


def test_nodata_outside_the_swath_is_nan(connection, demo_catalog_dir, tmp_path):
    date = S.S1_DATES[6]
    cube = connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=EDGE_AREA,
                                      temporal_extent=[str(date), f"{date}T23:59:59Z"], bands=["VV"])
    cube.download(tmp_path / "edge.tif", format="GTiff")
    expected = reference(demo_catalog_dir, date, "VV", EDGE_AREA)
    with rasterio.open(tmp_path / "edge.tif") as result:
        actual = result.read(1).astype("float64")
    assert 0.2 < np.isnan(expected).mean() < 0.8
    np.testing.assert_array_equal(actual, expected)  # NaN exactly where the COG holds its nodata


def test_ndvi_and_optical_common_names_fail_clearly(connection, tmp_path):
    s1 = connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE)
    assert list(connection.validate_process_graph(s1.filter_bands(["VH"]).reduce_dimension("t", "mean"))) == []
    problems = connection.validate_process_graph(s1.ndvi())
    assert [(p["code"], p["id"]) for p in problems] == [("NirBandAmbiguous", "ndvi1"), ("RedBandAmbiguous", "ndvi1")]
    assert "bands: VV, VH" in problems[0]["message"]
    with pytest.raises(OpenEoApiError) as info:
        s1.ndvi().download(tmp_path / "ndvi.tif", format="GTiff")
    assert (info.value.http_status_code, info.value.code) == (400, "NirBandAmbiguous")
    assert "bands: VV, VH" in info.value.message and "set `nir`" in info.value.message

    by_name = connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                         fetch_metadata=False)
    with pytest.raises(OpenEoApiError) as info:
        by_name.filter_bands(["nir"]).download(tmp_path / "nir.nc", format="netCDF")
    assert (info.value.http_status_code, info.value.code) == (400, "ProcessParameterInvalid")
    assert "'nir'" in info.value.message and "VV, VH" in info.value.message


def test_batch_job_result_read_back_with_load_stac(connection, job_runner, demo_catalog_dir, tmp_path):
    """How the aggregator splits a graph across backends: the radar part runs as a batch job, the other part
    reads its signed results with load_stac."""
    cube = connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE, bands=["VH"])
    job = cube.reduce_dimension("t", "mean").execute_batch(out_format="GTiff", **QUIET)
    (canonical,) = [link["href"] for link in job.get_results().get_metadata()["links"] if link["rel"] == "canonical"]
    chained = connection.load_stac(canonical)
    chained.download(tmp_path / "chained.tif", format="GTiff")
    expected = np.mean([reference(demo_catalog_dir, d, "VH") for d in JUNE_DATES], axis=0)
    with rasterio.open(tmp_path / "chained.tif") as result:
        np.testing.assert_allclose(result.read(1).astype("float64"), expected, rtol=1e-6)


def test_filtering_on_the_orbit_direction(connection, demo_catalog_dir, tmp_path):
    """The usual Sentinel-1 property filter: the demo has one descending orbit and no ascending one."""
    def load(state: str):
        return connection.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE, bands=["VV"],
                                          properties={"sat:orbit_state": lambda value: value == state})

    queryables = connection.get(f"/collections/{DEMO_S1_COLLECTION}/queryables").json()["properties"]
    assert queryables["sat:orbit_state"]["type"] == "string" and "sar:instrument_mode" in queryables
    load("descending").download(tmp_path / "descending.nc", format="netCDF")
    with xr.open_dataset(tmp_path / "descending.nc", engine="netcdf4") as ds:
        expected = np.stack([reference(demo_catalog_dir, d, "VV") for d in JUNE_DATES])
        np.testing.assert_array_equal(ds["VV"].transpose("t", "y", "x").values, expected)
    with pytest.raises(OpenEoApiError) as info:
        load("ascending").download(tmp_path / "ascending.nc", format="netCDF")
    assert (info.value.http_status_code, info.value.code) == (400, "ProcessParameterInvalid")
    assert "none passes the property filters" in info.value.message
