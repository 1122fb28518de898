"""load_collection_cube through a real STAC API (rustac serving the demo catalog) == the static catalog."""

from __future__ import annotations

import numpy as np
import pytest

from apicore import errors
from backend.catalog.metadata import to_openeo_collection
from backend.catalog.registry import CollectionRef
from backend.catalog.sources import StacApiSource, StaticCatalogSource
from backend.demo import DEMO_S2_COLLECTION, ensure_demo_catalog
from backend.processing.loading import estimate_load, load_collection_cube
from tests.support.stac_api_server import serve_stac_api

OFFICIAL = dict(west=679720, east=680680, south=5151080, north=5151920, crs=32632)
JUNE = ["2022-06-01", "2022-06-30"]
BOTH_ZONES = dict(west=11.40, south=46.46, east=12.06, north=46.52)


@pytest.fixture(scope="module")
def catalog(session_data_dir):
    return ensure_demo_catalog(session_data_dir / "demo-catalog")


@pytest.fixture(scope="module")
def sources(catalog):
    static = StaticCatalogSource(str(catalog))
    metadata = to_openeo_collection(static.collection(DEMO_S2_COLLECTION), "S2", "http://backend")
    with serve_stac_api(catalog) as url:
        api = StacApiSource(url)
        yield {"static": CollectionRef("S2", DEMO_S2_COLLECTION, static),
               "api": CollectionRef("S2", DEMO_S2_COLLECTION, api), "metadata": metadata}


@pytest.mark.parametrize("extent, interval, bands, properties", [
    (OFFICIAL, JUNE, ["B04", "B08"], None),
    (OFFICIAL, ["2022-06-02", "2022-06-12"], ["red", "SCL"], None),  # left-closed at 06-12
    (OFFICIAL, [None, "2022-06-13"], ["B08"], {"eo:cloud_cover": lambda v: v < 5}),
    (BOTH_ZONES, ["2022-06-02", "2022-06-03"], ["B04"], None),
])
def test_api_source_loads_identical_cube(sources, extent, interval, bands, properties):
    static = load_collection_cube(sources["static"], sources["metadata"], extent, interval, bands, properties)
    api = load_collection_cube(sources["api"], sources["metadata"], extent, interval, bands, properties)
    assert api.dims == ("t", "bands", "y", "x") and api.dtype == np.float32
    assert api.shape == static.shape and api.rio.crs == static.rio.crs
    np.testing.assert_array_equal(api.t.values, static.t.values)
    np.testing.assert_array_equal(api.bands.values, static.bands.values)
    np.testing.assert_array_equal(api.x.values, static.x.values)
    np.testing.assert_array_equal(api.y.values, static.y.values)
    static_values, api_values = static.values, api.values
    np.testing.assert_array_equal(api_values, static_values)  # NaN == NaN here
    assert np.isfinite(api_values).any()


def test_api_official_area_dates_and_estimate(sources):
    cube = load_collection_cube(sources["api"], sources["metadata"], OFFICIAL, JUNE, ["B04"])
    assert [str(t)[:10] for t in cube.t.values] == ["2022-06-02", "2022-06-12", "2022-06-17", "2022-06-22",
                                                    "2022-06-27"]
    assert cube.shape == (5, 1, 84, 96)
    est = estimate_load(sources["api"], sources["metadata"], OFFICIAL, JUNE, ["B04", "B08"])
    assert (est["items"], est["dates"], est["total_pixels"]) == (5, 5, 5 * 2 * 84 * 96)


def test_api_no_data_errors(sources):
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        load_collection_cube(sources["api"], sources["metadata"], OFFICIAL, ["2022-06-03", "2022-06-12"], ["B04"])
    assert excinfo.value.fields["parameter"] == "temporal_extent" and "no data" in excinfo.value.message
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        load_collection_cube(sources["api"], sources["metadata"], dict(west=11.2781, south=46.549, east=11.279,
                                                                       north=46.5505), JUNE, ["B04"])
    assert excinfo.value.fields["parameter"] == "spatial_extent" and "no items cover" in excinfo.value.message
