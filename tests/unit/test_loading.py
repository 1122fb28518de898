"""load_collection's data loading on the demo catalog: grid, values, nodata, bands, extents, errors.

Values are checked against independent rasterio reads of the COGs (pixel (row, col) of a 10 m tile
grid is at x = x0 + 10*col, y = y0 - 10*row; see backend/demo/layout.py).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from affine import Affine
from pyproj import Transformer

from apicore import errors
from backend.catalog.metadata import to_openeo_collection
from backend.catalog.registry import CollectionRef
from backend.catalog.sources import StaticCatalogSource
from backend.demo import DEMO_DEM_COLLECTION, DEMO_S2_COLLECTION, ensure_demo_catalog
from backend.demo import spec as S
from backend.demo.layout import KNOWN_PIXELS
from backend.processing.loading import estimate_load, load_collection_cube
from backend.processing.writers import write_result

OFFICIAL = dict(west=679720, east=680680, south=5151080, north=5151920, crs=32632)
OFFICIAL_ROWS, OFFICIAL_COLS = slice(588, 672), slice(472, 568)  # T1 10 m pixels of the official area
JUNE = ["2022-06-01", "2022-06-30"]
JUNE_DATES = ["2022-06-02", "2022-06-12", "2022-06-17", "2022-06-22", "2022-06-27"]
# North-west corner of T1: rows 0-200, cols 0-300 hold part of the swath-edge wedge
# (no data where col < 240 - 0.15 * row on ORBIT_EDGE_DATES, e.g. 06-12 and 06-22).
EDGE_AREA = dict(west=675000, east=678000, south=5155800, north=5157800, crs=32632)
EDGE_ROWS, EDGE_COLS = slice(0, 200), slice(0, 300)


@pytest.fixture(scope="module")
def demo(session_data_dir):
    catalog = ensure_demo_catalog(session_data_dir / "demo-catalog")
    source = StaticCatalogSource(str(catalog))
    refs = {cid: CollectionRef(cid, cid, source) for cid in (DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION)}
    metadata = {cid: to_openeo_collection(source.collection(cid), cid, "http://backend") for cid in refs}
    return {"root": catalog.parent, "refs": refs, "metadata": metadata}


def load(demo, spatial_extent, temporal_extent, bands, properties=None, collection=DEMO_S2_COLLECTION, **kw):
    return load_collection_cube(demo["refs"][collection], demo["metadata"][collection], spatial_extent,
                                temporal_extent, bands, properties, **kw)


def raw(demo, date: str, band: str, tile=S.TILE1) -> np.ndarray:
    item_id = S.s2_item_id(tile, dt.date.fromisoformat(date))
    with rasterio.open(demo["root"] / DEMO_S2_COLLECTION / item_id / f"{band}.tif") as ds:
        return ds.read(1)


def reflectance(values: np.ndarray) -> np.ndarray:
    """The documented decoding: nodata 0 -> NaN, DN * 0.0001 computed in float64, stored as float32."""
    out = (values.astype(np.float64) * 0.0001).astype(np.float32)
    out[values == 0] = np.nan
    return out


def dates(cube) -> list[str]:
    return [str(t)[:10] for t in cube.t.values]


def assert_invalid(excinfo, parameter: str, *fragments: str):
    err = excinfo.value
    assert err.code == "ProcessParameterInvalid" and err.status == 400
    assert err.fields["parameter"] == parameter and err.fields["process"] == "load_collection"
    for fragment in fragments:
        assert fragment in err.message, err.message


# --- grid, dims and values ---------------------------------------------------------------------


def test_official_area_dims_grid_and_exact_values(demo):
    cube = load(demo, OFFICIAL, JUNE, ["B04", "B08"])
    assert cube.dims == ("t", "bands", "y", "x")
    assert cube.shape == (5, 2, 84, 96) and cube.dtype == np.float32
    assert cube.chunks is not None  # lazy (dask)
    assert dates(cube) == JUNE_DATES  # left-closed: 06-30 excluded; no other June dates exist
    assert np.issubdtype(cube.t.dtype, np.datetime64)
    assert list(cube.bands.values) == ["B04", "B08"]
    assert cube.rio.crs.to_epsg() == 32632 and cube.odc.geobox.crs.epsg == 32632
    assert "spatial_ref" in cube.coords
    assert tuple(cube.odc.geobox.affine)[:6] == (10, 0, 679720, 0, -10, 5151920)
    assert float(cube.x[0]) == 679725 and float(cube.y[0]) == 5151915
    assert np.isnan(cube.attrs["nodata"]) and list(cube.attrs) == ["nodata"]
    values = cube.values
    for i, date in enumerate(JUNE_DATES):
        for j, band in enumerate(["B04", "B08"]):
            expected = reflectance(raw(demo, date, band)[OFFICIAL_ROWS, OFFICIAL_COLS])
            np.testing.assert_array_equal(values[i, j], expected)
    assert not np.isnan(values).any()
    assert 0 < np.nanmin(values) and np.nanmax(values) < 1.0  # reflectances, not DNs


def test_a_one_pixel_cube_keeps_its_grid_and_writes_a_geotiff_at_its_place(demo, tmp_path):
    # a 1 x 1 cube has no pixel size in its coordinates: the GeoTransform of its grid mapping carries it
    one = dict(west=679720, east=679730, south=5151910, north=5151920, crs=32632)
    cube = load(demo, one, ["2022-06-02", "2022-06-03"], ["B04"])
    assert cube.shape == (1, 1, 1, 1)
    assert cube.coords["spatial_ref"].attrs["GeoTransform"].split() == ["679720.0", "10.0", "0.0",
                                                                         "5151920.0", "0.0", "-10.0"]
    # the same grid mapping rioxarray writes (it is built from a cached template)
    reference = xr.DataArray(np.zeros((1, 1)), dims=("y", "x")).rio.write_crs("EPSG:32632").rio.write_transform(
        Affine(10, 0, 679720, 0, -10, 5151920))
    assert cube.coords["spatial_ref"].attrs == reference.coords["spatial_ref"].attrs
    assert cube.encoding["grid_mapping"] == "spatial_ref" and cube.rio.crs.to_epsg() == 32632
    written = write_result(cube, "GTiff", {}, tmp_path)
    with rasterio.open(written.path) as ds:
        assert tuple(ds.transform)[:6] == (10, 0, 679720, 0, -10, 5151920) and ds.crs.to_epsg() == 32632
        assert ds.read(1)[0, 0] == reflectance(raw(demo, "2022-06-02", "B04")[588:589, 472:473])[0, 0]  # T1 row 588, col 472


def test_nodata_wedge_becomes_nan(demo):
    cube = load(demo, EDGE_AREA, ["2022-06-01", "2022-06-23"], ["B02", "B08"]).compute()
    assert dates(cube) == ["2022-06-02", "2022-06-12", "2022-06-17", "2022-06-22"]
    r, c = KNOWN_PIXELS["T1"]["swath_edge"]
    x, y = S.TILE1.pixel_center(r, c)
    for date in dates(cube):
        for band in ("B02", "B08"):
            source = raw(demo, date, band)[EDGE_ROWS, EDGE_COLS]
            np.testing.assert_array_equal(cube.sel(t=date, bands=band).values[0], reflectance(source))
        on_edge = dt.date.fromisoformat(date) in S.ORBIT_EDGE_DATES
        pixel = cube.sel(t=date, bands="B08", x=x, y=y).values[0]
        assert np.isnan(pixel) == on_edge, date
    wedge = np.isnan(cube.sel(t="2022-06-12").values[0])
    assert 0.1 < wedge.mean() < 0.9  # part of the area only
    assert not np.isnan(cube.sel(t="2022-06-02").values).any()


def test_common_names_give_canonical_labels(demo):
    by_common = load(demo, OFFICIAL, JUNE, ["red", "nir"])
    assert list(by_common.bands.values) == ["B04", "B08"]
    reordered = load(demo, OFFICIAL, JUNE, ["nir", "B04"])
    assert list(reordered.bands.values) == ["B08", "B04"]
    np.testing.assert_array_equal(reordered.sel(bands="B04").values, by_common.sel(bands="B04").values)


def test_scl_class_values_unscaled_nearest_on_10m_grid(demo):
    cube = load(demo, OFFICIAL, JUNE, ["SCL", "B11"]).compute()
    assert cube.shape == (5, 2, 84, 96)  # 20 m bands on the collection's 10 m grid
    for date in JUNE_DATES:
        scl20 = raw(demo, date, "SCL")
        rows, cols = np.arange(588, 672) // 2, np.arange(472, 568) // 2
        expected = scl20[np.ix_(rows, cols)].astype(np.float32)  # each 20 m pixel -> 2x2 at 10 m
        np.testing.assert_array_equal(cube.sel(t=date, bands="SCL").values[0], expected)
        b11 = raw(demo, date, "B11")[np.ix_(rows, cols)]
        np.testing.assert_array_equal(cube.sel(t=date, bands="B11").values[0], reflectance(b11))
    scl = cube.sel(bands="SCL").values
    assert set(np.unique(scl)) <= {3.0, 4.0, 5.0, 6.0, 8.0, 9.0, 10.0}
    r, c = KNOWN_PIXELS["T1"]["cloud_20220612"]
    x, y = S.TILE1.pixel_center(r, c)
    assert cube.sel(t="2022-06-12", bands="SCL", x=x, y=y).values[0] == 9  # thick cloud


def test_scl_nodata_is_nan(demo):
    cube = load(demo, EDGE_AREA, ["2022-06-12", "2022-06-13"], ["SCL"]).compute()
    r, c = KNOWN_PIXELS["T1"]["swath_edge"]
    x, y = S.TILE1.pixel_center(r, c)
    assert np.isnan(cube.sel(x=x, y=y).values).all()
    assert np.nanmin(cube.values) >= 3


def test_wgs84_bbox_gives_the_same_pixels(demo):
    to_geo = Transformer.from_crs(32632, 4326, always_xy=True)
    geo_box = to_geo.transform_bounds(OFFICIAL["west"], OFFICIAL["south"], OFFICIAL["east"], OFFICIAL["north"],
                                      densify_pts=21)
    geo = load(demo, dict(zip(("west", "south", "east", "north"), geo_box)), JUNE, ["B04"])
    utm = load(demo, OFFICIAL, JUNE, ["B04"])
    assert geo.rio.crs.to_epsg() == 32632  # native grid, not EPSG:4326
    # The WGS84 box encloses the UTM box. Back in UTM it is larger: meridians converge (~1.7 deg
    # here), so an axis-aligned lon/lat box is a slightly rotated, bigger box in UTM. The cube is
    # exactly that densified box, snapped outwards to the native 10 m grid.
    w, s, e, n = Transformer.from_crs(4326, 32632, always_xy=True).transform_bounds(*geo_box, densify_pts=21)
    west, south, east, north = geo.rio.bounds()
    assert (west, south) == (10 * np.floor(w / 10), 10 * np.floor(s / 10))
    assert (east, north) == (10 * np.ceil(e / 10), 10 * np.ceil(n / 10))
    assert OFFICIAL["west"] - 40 <= west <= OFFICIAL["west"] and OFFICIAL["east"] <= east <= OFFICIAL["east"] + 40
    assert OFFICIAL["south"] - 40 <= south <= OFFICIAL["south"] and OFFICIAL["north"] <= north <= OFFICIAL["north"] + 40
    inner = geo.sel(x=utm.x, y=utm.y)  # same grid: the UTM area's pixels are identical
    np.testing.assert_array_equal(inner.values, utm.values)


def test_extent_across_two_utm_zones_loads_into_one_grid(demo):
    # 11.40-12.06 E: the east of T1 (zone 32) and all of T2 (zone 33); T1 covers more -> EPSG:32632.
    extent = dict(west=11.40, south=46.46, east=12.06, north=46.52)
    cube = load(demo, extent, ["2022-06-02", "2022-06-03"], ["B04"], chunk_size=1024)
    assert cube.rio.crs.to_epsg() == 32632
    assert abs(float(cube.x[1] - cube.x[0])) == 10  # finest resolution
    values = cube.isel(t=0, bands=0)
    t1_x_max = S.TILE1.bounds()[2]
    assert values.sel(x=slice(None, t1_x_max)).notnull().sum() > 10000
    t2_in_32632 = Transformer.from_crs(32633, 32632, always_xy=True).transform(272560, 5152440)
    near_t2 = values.sel(x=slice(t2_in_32632[0] - 500, t2_in_32632[0] + 500),
                         y=slice(t2_in_32632[1] + 500, t2_in_32632[1] - 500))
    assert near_t2.notnull().all() and float(near_t2.mean()) > 0
    assert values.sel(x=slice(t1_x_max + 1000, t2_in_32632[0] - 5000)).isnull().all()  # the gap between


def test_target_crs_and_resolution_override(demo):
    coarse = load(demo, OFFICIAL, ["2022-06-02", "2022-06-03"], ["B04"], target_resolution=20).compute()
    assert coarse.shape == (1, 1, 42, 48)
    # Coarser than the source: odc-stac reads the COG's 20 m overview (built with AVERAGE here).
    path = demo["root"] / DEMO_S2_COLLECTION / S.s2_item_id(S.TILE1, dt.date(2022, 6, 2)) / "B04.tif"
    with rasterio.open(path, overview_level=0) as ds:
        overview = ds.read(1)[294:336, 236:284]
    np.testing.assert_array_equal(coarse.values[0, 0], reflectance(overview))
    geo = load(demo, OFFICIAL, ["2022-06-02", "2022-06-03"], ["B04"], target_crs=4326)
    assert geo.dims == ("t", "bands", "y", "x") and geo.rio.crs.to_epsg() == 4326
    assert 11.3 < float(geo.x.mean()) < 11.45 and geo.notnull().all()


def test_dem_int16_unscaled(demo):
    cube = load(demo, OFFICIAL, None, None, collection=DEMO_DEM_COLLECTION).compute()
    assert list(cube.bands.values) == ["DEM"] and cube.sizes["t"] == 1
    assert abs(float(cube.x[1] - cube.x[0])) == 30
    path = demo["root"] / DEMO_DEM_COLLECTION / S.dem_item_id(S.TILE1) / "DEM.tif"
    with rasterio.open(path) as ds:
        window = ds.window(*cube.rio.bounds())
        expected = ds.read(1, window=window).astype(np.float32)
    np.testing.assert_array_equal(cube.values[0, 0], expected)
    assert 150 < np.nanmin(expected) and np.nanmax(expected) < 2500


# --- temporal and property filters -------------------------------------------------------------


def test_temporal_interval_is_left_closed(demo):
    cube = load(demo, OFFICIAL, ["2022-06-02", "2022-06-12"], ["B04"])
    assert dates(cube) == ["2022-06-02"]
    cube = load(demo, OFFICIAL, ["2022-06-02T10:20:21Z", "2022-06-12T10:20:22Z"], ["B04"])
    assert dates(cube) == ["2022-06-02", "2022-06-12"]
    open_start = load(demo, OFFICIAL, [None, "2022-06-02"], ["B04"])
    assert dates(open_start) == ["2022-04-18", "2022-05-13"]
    open_end = load(demo, OFFICIAL, ["2022-08-01", None], ["B04"])
    assert dates(open_end) == ["2022-08-16", "2022-09-15"]
    assert load(demo, OFFICIAL, None, ["B04"]).sizes["t"] == len(S.S2_DATES)


def test_property_filter(demo):
    clear = load(demo, OFFICIAL, JUNE, ["B04"], {"eo:cloud_cover": lambda v: v < 5})
    everything = load(demo, OFFICIAL, JUNE, ["B04"], {"eo:cloud_cover": lambda v: v >= 0})
    assert dates(everything) == JUNE_DATES
    assert "2022-06-12" not in dates(clear) and 0 < len(dates(clear)) < len(JUNE_DATES)


# --- errors ------------------------------------------------------------------------------------


def test_unknown_band(demo):
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        load(demo, OFFICIAL, JUNE, ["B04", "B99"])
    assert_invalid(excinfo, "bands", "band 'B99' does not exist", "available: B02, B03, B04, B08, B11, SCL")


@pytest.mark.parametrize("change, fragment", [
    (dict(west=680680, east=679720), "swap west and east"),
    (dict(south=5151920, north=5151080), "swap south and north"),
    (dict(west="far"), "'west' must be a number"),
    (dict(crs="EPSG:not-a-code"), "not a valid EPSG code"),
    (dict(west=None), "'west' is missing"),
])
def test_invalid_bbox(demo, change, fragment):
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        load(demo, {**OFFICIAL, **change}, JUNE, ["B04"])
    assert_invalid(excinfo, "spatial_extent", fragment)


def test_geojson_extent_is_refused_clearly(demo):
    polygon = {"type": "Polygon", "coordinates": [[[11.3, 46.5], [11.4, 46.5], [11.4, 46.45], [11.3, 46.5]]]}
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        load(demo, polygon, JUNE, ["B04"])
    assert_invalid(excinfo, "spatial_extent", "GeoJSON (Polygon) extents are not supported", "bounding box")


@pytest.mark.parametrize("crs", ["EPSG:32632", "32632", "+proj=utm +zone=32 +datum=WGS84 +units=m +no_defs",
                                 'PROJCS["WGS 84 / UTM zone 32N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID['
                                 '"WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",'
                                 '0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER['
                                 '"latitude_of_origin",0],PARAMETER["central_meridian",9],PARAMETER['
                                 '"scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER['
                                 '"false_northing",0],UNIT["metre",1]]'])
def test_bbox_crs_spellings(demo, crs):
    est = estimate_load(demo["refs"][DEMO_S2_COLLECTION], demo["metadata"][DEMO_S2_COLLECTION],
                        {**OFFICIAL, "crs": crs}, JUNE, ["B04"])
    assert (est["shape"], est["crs"]) == ([5, 1, 84, 96], "EPSG:32632")


@pytest.mark.parametrize("interval", [["2022-06-30", "2022-06-01"], ["2022-06-01", "2022-06-01"],
                                      ["2022-06-01T12:00:00Z", "2022-06-01T11:00:00+00:00"]])
def test_empty_interval(demo, interval):
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        load(demo, OFFICIAL, interval, ["B04"])
    assert_invalid(excinfo, "temporal_extent", "must be later than start")


def test_no_data_outside_the_collection(demo):
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        load(demo, dict(west=5.0, south=45.0, east=5.1, north=45.1), JUNE, ["B04"])
    assert_invalid(excinfo, "spatial_extent", "no data", "west=11.278", "2022-04-18T10:20:21Z")
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:  # between the tiles
        load(demo, dict(west=11.7, south=46.48, east=11.8, north=46.5), JUNE, ["B04"])
    assert_invalid(excinfo, "spatial_extent", "no data", "lies outside", "west=12.002")
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:  # in T1's bbox, not in its footprint
        load(demo, dict(west=11.2781, south=46.549, east=11.279, north=46.5505), JUNE, ["B04"])
    assert_invalid(excinfo, "spatial_extent", "no data", "no items cover")
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        load(demo, OFFICIAL, ["2023-01-01", "2023-02-01"], ["B04"])
    assert_invalid(excinfo, "temporal_extent", "no data", "2022-04-18T10:20:21Z to 2022-09-15T10:20:21Z")
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:  # within the period, no acquisition
        load(demo, OFFICIAL, ["2022-06-03", "2022-06-12"], ["B04"])
    assert_invalid(excinfo, "temporal_extent", "no data", "no acquisitions", "2022-06-12T00:00:00Z)")
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        load(demo, OFFICIAL, JUNE, ["B04"], {"eo:cloud_cover": lambda v: v < 0})
    assert_invalid(excinfo, "properties", "no data", "none passes the property filters")


# --- dry run -----------------------------------------------------------------------------------


def test_estimate_load_reads_no_pixels(demo):
    ref, md = demo["refs"][DEMO_S2_COLLECTION], demo["metadata"][DEMO_S2_COLLECTION]
    est = estimate_load(ref, md, OFFICIAL, JUNE, ["B04", "B08"])
    assert (est["items"], est["dates"], est["pixels_per_band_per_date"]) == (5, 5, 84 * 96)
    assert est["total_pixels"] == 5 * 2 * 84 * 96 and est["crs"] == "EPSG:32632"
    whole = estimate_load(ref, md, None, None, None)
    assert (whole["items"], whole["dates"], len(whole["bands"])) == (20, 10, 6)
    assert whole["crs"] == "EPSG:32632"  # T1 (1280 px square) outweighs T2 (512 px square)
    height, width = whole["shape"][2:]
    assert width > 1280 + 4000 and height >= 1280  # both tiles, in one zone-32 grid
