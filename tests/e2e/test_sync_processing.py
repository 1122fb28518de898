"""POST /result through the real openeo client, checked against an independent numpy computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio
from rasterio.windows import from_bounds

from backend.demo import DEMO_S2_COLLECTION

# The official openEO workflow-test area (EPSG:32632).
AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
JUNE_DATES = ["20220602", "20220612", "20220617", "20220622", "20220627"]


@pytest.fixture
def connection(live_server):
    name, password = live_server.new_user()
    return openeo.connect(live_server.url).authenticate_basic(name, password)


def _reference_band(catalog_dir: Path, date: str, band: str) -> np.ndarray:
    path = catalog_dir / DEMO_S2_COLLECTION / f"S2_DEMO_T1_{date}" / f"{band}.tif"
    with rasterio.open(path) as src:
        window = from_bounds(AREA["west"], AREA["south"], AREA["east"], AREA["north"], src.transform)
        raw = src.read(1, window=window).astype("float64")
        raw[raw == src.nodata] = np.nan
        return raw * 0.0001


def test_ndvi_mean_composite_geotiff(connection, session_data_dir, tmp_path):
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA,
                                      temporal_extent=["2022-06-01", "2022-07-01"], bands=["B04", "B08"])
    target = tmp_path / "ndvi.tif"
    cube.ndvi(nir="B08", red="B04").reduce_dimension("t", "mean").download(target, format="GTiff")

    catalog_dir = session_data_dir / "demo-catalog"
    ndvis = []
    for date in JUNE_DATES:
        red, nir = _reference_band(catalog_dir, date, "B04"), _reference_band(catalog_dir, date, "B08")
        ndvis.append((nir - red) / (nir + red))
    expected = np.nanmean(np.stack(ndvis), axis=0)

    with rasterio.open(target) as result:
        assert result.crs.to_epsg() == 32632
        assert (result.transform.c, result.transform.f, result.transform.a) == (679720, 5151920, 10)
        assert result.shape == expected.shape == (84, 96)
        assert result.dtypes[0] in ("float32", "float64")
        actual = result.read(1, masked=False).astype("float64")
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, equal_nan=True)
    assert -1 <= np.nanmin(actual) and np.nanmax(actual) <= 1 and np.nanmax(actual) > 0.5  # fields in June


def test_band_math_has_no_integer_wraparound(connection, tmp_path):
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA,
                                      temporal_extent=["2022-06-02", "2022-06-03"], bands=["B04", "B08"])
    red, nir = cube.band("B04"), cube.band("B08")
    (red - nir).download(tmp_path / "diff.tif")  # uint16 would wrap to ~65000 where nir > red
    with rasterio.open(tmp_path / "diff.tif") as result:
        values = result.read(1)
    assert np.nanmin(values) < 0 and np.nanmax(values) < 1
