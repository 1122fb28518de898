"""Bands by common name (ndvi's defaults, filter_bands) and the netCDF variable names, through the real openeo
client and a real HTTP server, synchronously and as a batch job; values checked against NDVI computed by hand
from the demo COGs.

Regression tests for issue 9, items 3 (``cube.ndvi()`` failed with "'common_name' is not a valid dimension
or coordinate"; /validation passed ndvi on a collection without nir) and 12 (a band-less netCDF result was
named ``var``).
"""

from __future__ import annotations

import numpy as np
import openeo
import pytest
import rasterio
import xarray as xr
from openeo.rest import OpenEoApiError

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S2_COLLECTION
from tests.e2e.test_sync_processing import AREA, JUNE_DATES, _reference_band

JUNE = ["2022-06-01", "2022-07-01"]
DEM_YEAR = ["2022-01-01", "2023-01-01"]


@pytest.fixture
def connection(live_server):
    name, password = live_server.new_user()
    return openeo.connect(live_server.url).authenticate_basic(name, password)


@pytest.fixture(scope="module")
def hand_ndvi(session_data_dir) -> np.ndarray:
    """(date, y, x) NDVI of the June dates from the COGs: (B08 - B04) / (B08 + B04), nodata as NaN."""
    catalog = session_data_dir / "demo-catalog"
    ndvis = []
    for date in JUNE_DATES:
        red, nir = _reference_band(catalog, date, "B04"), _reference_band(catalog, date, "B08")
        ndvis.append((nir - red) / (nir + red))
    return np.stack(ndvis)


def _netcdf_variables(path) -> dict[str, np.ndarray]:
    with xr.open_dataset(path, engine="netcdf4") as ds:
        assert "crs" in ds.variables  # the grid mapping, not a band
        return {str(name): ds[name].transpose(*[d for d in ("t", "y", "x") if d in ds[name].dims]).values
                for name in ds.data_vars if name != "crs"}


def test_ndvi_with_default_bands_equals_hand_computed_ndvi(connection, hand_ndvi, tmp_path):
    """All bands loaded, ndvi() without nir/red: the bands with common names nir (B08) and red (B04)."""
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE)
    cube.ndvi().download(tmp_path / "ndvi.tif", format="GTiff")
    with rasterio.open(tmp_path / "ndvi.tif") as result:
        assert result.count == len(JUNE_DATES) and result.crs.to_epsg() == 32632
        assert [d[:10].replace("-", "") for d in result.descriptions] == JUNE_DATES  # one band per date
        actual = result.read().astype("float64")
    assert np.array_equal(np.isnan(actual), np.isnan(hand_ndvi))
    np.testing.assert_allclose(actual, hand_ndvi, rtol=1e-5, equal_nan=True)
    assert np.nanmax(actual) > 0.5  # vegetation in June: not a zero or constant cube


def test_ndvi_netcdf_variable_is_named_ndvi(connection, hand_ndvi, tmp_path):
    """Item 12: ndvi's band-less result is the variable NDVI (it was "var")."""
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                      bands=["B04", "B08"])
    cube.ndvi(nir="B08", red="B04").download(tmp_path / "ndvi.nc", format="netCDF")
    variables = _netcdf_variables(tmp_path / "ndvi.nc")
    assert list(variables) == ["NDVI"]
    np.testing.assert_allclose(variables["NDVI"], hand_ndvi, rtol=1e-5, equal_nan=True)


def test_netcdf_variable_names_of_single_band_cubes(connection, session_data_dir, hand_ndvi, tmp_path):
    """A bands dimension of one label: the label; a cube reduced over bands, which carries no name: "var"
    (what VITO/CDSE write; the openEO test suite's reader reads it as a cube without bands)."""
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                      bands=["B04", "B08"])
    cube.filter_bands(["B08"]).download(tmp_path / "nir.nc", format="netCDF")
    nir = _netcdf_variables(tmp_path / "nir.nc")
    assert list(nir) == ["B08"]
    expected = np.stack([_reference_band(session_data_dir / "demo-catalog", d, "B08") for d in JUNE_DATES])
    np.testing.assert_allclose(nir["B08"], expected, rtol=1e-6, equal_nan=True)

    def by_hand(bands):
        red, near_infrared = bands.array_element(label="B04"), bands.array_element(label="B08")
        return (near_infrared - red) / (near_infrared + red)

    cube.reduce_dimension("bands", by_hand).download(tmp_path / "reduced.nc", format="netCDF")
    reduced = _netcdf_variables(tmp_path / "reduced.nc")
    assert list(reduced) == ["var"]
    np.testing.assert_allclose(reduced["var"], hand_ndvi, rtol=1e-5, equal_nan=True)


def test_filter_bands_by_common_name(live_server, session_data_dir, tmp_path):
    """Without collection metadata the client sends the common names as they are: the backend resolves them,
    in the requested order."""
    name, password = live_server.new_user()
    connection = openeo.connect(live_server.url).authenticate_basic(name, password)
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE,
                                      fetch_metadata=False)
    filtered = cube.filter_bands(["nir", "red"])
    assert filtered.flat_graph()["filterbands1"]["arguments"]["bands"] == ["nir", "red"]
    filtered.download(tmp_path / "bands.nc", format="netCDF")
    variables = _netcdf_variables(tmp_path / "bands.nc")
    assert list(variables) == ["B08", "B04"]
    catalog = session_data_dir / "demo-catalog"
    for band, values in variables.items():
        expected = np.stack([_reference_band(catalog, date, band) for date in JUNE_DATES])
        np.testing.assert_allclose(values, expected, rtol=1e-6, equal_nan=True)

    with pytest.raises(OpenEoApiError) as info:
        cube.filter_bands(["nir", "swir22"]).download(tmp_path / "none.nc", format="netCDF")
    assert info.value.http_status_code == 400 and info.value.code == "ProcessParameterInvalid"
    assert "'swir22'" in info.value.message and "B08 (nir)" in info.value.message


def test_validation_reports_ndvi_on_a_collection_without_nir(connection):
    dem = connection.load_collection(DEMO_DEM_COLLECTION, spatial_extent=AREA, temporal_extent=DEM_YEAR)
    problems = connection.validate_process_graph(dem.ndvi())
    assert [(p["code"], p["id"]) for p in problems] == [("NirBandAmbiguous", "ndvi1"), ("RedBandAmbiguous", "ndvi1")]
    assert "'nir'" in problems[0]["message"] and "bands: DEM" in problems[0]["message"]
    assert "'red'" in problems[1]["message"] and "bands: DEM" in problems[1]["message"]
    # the run fails the same way, with a 400 that says what to change
    with pytest.raises(OpenEoApiError) as info:
        dem.ndvi().download(format="GTiff")
    assert info.value.http_status_code == 400 and info.value.code == "NirBandAmbiguous"
    assert "bands: DEM" in info.value.message and "set `nir`" in info.value.message

    s2 = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE)
    assert list(connection.validate_process_graph(s2.ndvi())) == []
    chosen = s2.filter_bands(["B02", "B04"])  # the client normalises names; the backend sees B02, B04
    problems = connection.validate_process_graph(chosen.ndvi())
    assert [p["code"] for p in problems] == ["NirBandAmbiguous"]
    assert "bands: B02 (blue), B04 (red)" in problems[0]["message"]


def test_batch_job_ndvi_with_default_bands(connection, job_runner, hand_ndvi, tmp_path):
    """The same through the runner and the Dask cluster: the common names survive the batch path."""
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE)
    job = cube.ndvi().create_job(out_format="netCDF", title="NDVI by common names")
    job.start_and_wait(max_poll_interval=0.5, print=lambda *_: None)
    assert job.describe()["status"] == "finished"
    paths = job.get_results().download_files(tmp_path / "batch")
    variables = _netcdf_variables(next(p for p in paths if p.name == "result.nc"))
    assert list(variables) == ["NDVI"]
    np.testing.assert_allclose(variables["NDVI"], hand_ndvi, rtol=1e-5, equal_nan=True)
