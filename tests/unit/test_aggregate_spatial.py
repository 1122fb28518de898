"""aggregate_spatial (our own, backend/processing/processes/aggregate_spatial.py, geometry_input.py, zonal.py).

Values are checked against an independent computation: for each polygon, a plain numpy mask of the
pixels whose centre lies inside it (``shapely.contains_xy`` on the pixel-centre coordinates), then the
numpy nan-reducer over those pixels. The cube is the demo SENTINEL2_L2A_DEMO over the north-west corner
of tile T1, which holds the swath-edge no-data wedge on 06-12 and 06-22 (see test_loading.py).
Polygon vertices sit at odd fractions of a metre, so no pixel centre lies on an edge.
"""

from __future__ import annotations

import csv
import importlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from pyproj import Transformer

from apicore import errors
from backend.catalog.metadata import to_openeo_collection
from backend.catalog.registry import CollectionRef
from backend.catalog.sources import StaticCatalogSource
from backend.demo import DEMO_S2_COLLECTION, ensure_demo_catalog
from backend.processing.engine.executor import Callback, Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.processing.loading import load_collection_cube
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations, zonal
from backend.processing.processes.aggregate_spatial import aggregate_spatial, fast_reducer
from backend.processing.writers import write_result

AREA = dict(west=675000, east=678000, south=5155800, north=5157800, crs=32632)  # T1 rows 0-200, cols 0-300
JUNE = ["2022-06-01", "2022-06-30"]
DATES = ["2022-06-02", "2022-06-12", "2022-06-17", "2022-06-22", "2022-06-27"]
EDGE_DATES = {"2022-06-12", "2022-06-22"}
TO_WGS84 = Transformer.from_crs(32632, 4326, always_xy=True)
TO_UTM = Transformer.from_crs(4326, 32632, always_xy=True)
# the module (the package attribute of the same name is the function)
module = importlib.import_module("backend.processing.processes.aggregate_spatial")
geometry_input = importlib.import_module("backend.processing.processes.geometry_input")

# Polygons in EPSG:32632 (sent in WGS84 unless a test says otherwise).
POLYGONS = {
    # inside the no-data wedge (tile rows 10-49, cols 10-59; the wedge is col < 240 - 0.15 row)
    "wedge": shapely.box(675103.3, 5157303.3, 675596.7, 5157696.7),
    "field_a": shapely.box(676013.1, 5156507.7, 676488.9, 5156992.2),
    "field_b": shapely.box(676303.4, 5156702.6, 676799.2, 5157196.1),  # overlaps field_a
    "inside_a": shapely.Polygon([(676103.7, 5156603.1), (676401.3, 5156651.9), (676207.9, 5156903.3)]),
    "multi": shapely.MultiPolygon([shapely.box(677003.2, 5156003.3, 677207.7, 5156198.1),
                                   shapely.box(676403.5, 5156403.2, 676597.3, 5156596.6)]),  # 2nd part overlaps a
    "holed": shapely.Polygon(shapely.box(675603.1, 5155903.4, 676096.8, 5156396.2).exterior.coords,
                             [shapely.box(675753.3, 5156053.9, 675947.1, 5156247.6).exterior.coords]),
    "partly_outside": shapely.box(677803.1, 5156303.2, 678296.4, 5156697.9),  # crosses x = 678000
    "outside": shapely.box(679003.3, 5156003.3, 679203.7, 5156203.9),  # east of the cube
}
NAMES = list(POLYGONS)


def wgs84(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_WGS84.transform(xy[:, 0], xy[:, 1])))


def utm(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1])))


def feature_collection(polygons: dict, crs=None, transform=wgs84) -> dict:
    document = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name, "rank": i},
         "geometry": shapely.geometry.mapping(transform(geom))} for i, (name, geom) in enumerate(polygons.items())]}
    if crs:
        document["crs"] = {"type": "name", "properties": {"name": crs}}
    return document


@pytest.fixture(scope="module")
def demo(session_data_dir):
    catalog = ensure_demo_catalog(session_data_dir / "demo-catalog")
    source = StaticCatalogSource(str(catalog))
    ref = CollectionRef(DEMO_S2_COLLECTION, DEMO_S2_COLLECTION, source)
    metadata = to_openeo_collection(source.collection(DEMO_S2_COLLECTION), DEMO_S2_COLLECTION, "http://backend")
    return ref, metadata


@pytest.fixture(scope="module")
def cube(demo):
    return load_collection_cube(*demo, AREA, JUNE, ["B04", "B08"])


@pytest.fixture(scope="module")
def pixels(cube):
    """(values (t, bands, y, x), pixel-centre X, Y)."""
    x, y = np.meshgrid(cube.x.values, cube.y.values)
    return cube.values, x, y


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def callback(implementations, process_graph: dict) -> Callback:
    return Callback(Executor(implementations, RunContext()), Graph.parse(process_graph), {})


def reducer_graph(process_id: str, **arguments) -> dict:
    return {"r": {"process_id": process_id, "arguments": {"data": {"from_parameter": "data"}, **arguments},
                  "result": True}}


def masked(pixels, polygon_utm) -> np.ndarray:
    """(t, bands, n_pixels) of the pixels whose centre lies in the polygon, as float64 (so the reference
    sums do not carry float32 rounding)."""
    values, x, y = pixels
    return values[..., shapely.contains_xy(polygon_utm, x, y)].astype(np.float64)


def reference(op: str, px: np.ndarray) -> np.ndarray:
    """numpy over the last axis; NaN excluded; no valid value → NaN (count: 0)."""
    count = (~np.isnan(px)).sum(axis=-1)
    if op == "count":
        return count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {"mean": np.nanmean, "sum": np.nansum, "min": np.nanmin, "max": np.nanmax, "median": np.nanmedian,
               "sd": lambda a, axis: np.nanstd(a, axis=axis, ddof=1),
               "variance": lambda a, axis: np.nanvar(a, axis=axis, ddof=1)}[op](px, axis=-1) \
            if px.shape[-1] else np.full(px.shape[:-1], np.nan)
    out = np.asarray(out, dtype=np.float64)
    out[count < (2 if op in ("sd", "variance") else 1)] = np.nan
    return out


# --- values against the independent computation ------------------------------------------------------------


@pytest.mark.parametrize("op", ["mean", "sum", "count", "min", "max", "median", "sd", "variance"])
def test_fast_reducers_match_numpy_masks(cube, pixels, implementations, op):
    result = aggregate_spatial(cube, feature_collection(POLYGONS), callback(implementations, reducer_graph(op)))
    assert result.dims == ("geometry", "t", "bands") and result.shape == (len(POLYGONS), 5, 2)
    assert result.dtype == (np.int64 if op == "count" else np.float32)
    for i, name in enumerate(NAMES):
        expected = reference(op, masked(pixels, utm(wgs84(POLYGONS[name]))))
        np.testing.assert_allclose(result.values[i], expected, rtol=2e-6, atol=1e-7, equal_nan=True, err_msg=name)


def test_special_polygons(cube, pixels, implementations):
    count = aggregate_spatial(cube, feature_collection(POLYGONS), callback(implementations, reducer_graph("count")))
    mean = aggregate_spatial(cube, feature_collection(POLYGONS), "mean")
    row = {name: i for i, name in enumerate(NAMES)}
    for k, date in enumerate(DATES):
        wedge = count.values[row["wedge"], k]
        assert (wedge == 0).all() if date in EDGE_DATES else (wedge == 40 * 50).all(), date
        assert np.isnan(mean.values[row["wedge"], k]).all() == (date in EDGE_DATES)
    # overlapping polygons each keep all their pixels
    a, b, inner = (masked(pixels, utm(wgs84(POLYGONS[n]))).shape[-1] for n in ("field_a", "field_b", "inside_a"))
    assert count.values[row["field_a"], 0, 0] == a == 48 * 48
    assert count.values[row["field_b"], 0, 0] == b > 0 and count.values[row["inside_a"], 0, 0] == inner > 0
    # a multipolygon is one value over the union of its parts; the hole is excluded
    assert count.values[row["multi"], 0, 0] == 21 * 20 + 20 * 20
    assert count.values[row["holed"], 0, 0] == 50 * 50 - 20 * 20
    # only the part inside the cube counts; a polygon outside gets no pixels
    assert count.values[row["partly_outside"], 0, 0] == 20 * 40
    assert (count.values[row["outside"]] == 0).all() and np.isnan(mean.values[row["outside"]]).all()


def test_null_and_invalid_geometries(cube, pixels):
    bow_tie = shapely.Polygon([(676013.1, 5156507.7), (676488.9, 5156992.2), (676488.9, 5156507.7),
                               (676013.1, 5156992.2), (676013.1, 5156507.7)])
    document = feature_collection({"bow tie": bow_tie, "field_a": POLYGONS["field_a"]})
    document["features"].insert(0, {"type": "Feature", "properties": {"name": "no geometry"}, "geometry": None})
    count = aggregate_spatial(cube, document, "count")
    assert count.shape == (3, 5, 2) and (count.values[0] == 0).all()
    assert count["geometry"].values[0].is_empty and list(count["name"].values)[0] == "no geometry"
    assert (count.values[1, [0, 2, 4]] > 0).all()  # rasterised as GDAL fills it (two triangles), no error
    assert (count.values[2, [0, 2, 4]] == 48 * 48).all()  # (on 06-12 and 06-22 field_a is in the wedge)


def test_geometries_in_the_cube_crs_give_the_same_values(cube):
    by_wgs84 = aggregate_spatial(cube, feature_collection(POLYGONS), "median")
    by_utm = aggregate_spatial(cube, feature_collection(POLYGONS, crs="EPSG:32632", transform=lambda g: g), "median")
    np.testing.assert_array_equal(by_wgs84.values, by_utm.values)
    assert by_utm.xindexes["geometry"].crs.to_epsg() == 32632
    assert by_wgs84.xindexes["geometry"].crs.to_epsg() == 4326


def test_output_keeps_the_given_geometries_labels_and_properties(cube):
    document = feature_collection(POLYGONS)
    document["features"][0]["id"] = "parcel-0"
    result = aggregate_spatial(cube, document, "mean")
    for i, feature in enumerate(document["features"]):
        assert result["geometry"].values[i].equals_exact(shapely.geometry.shape(feature["geometry"]), 0)
    assert list(result["name"].values) == NAMES and result["rank"].dtype == np.int64
    assert list(result["id"].values) == ["parcel-0"] + [""] * (len(NAMES) - 1)
    assert [str(t)[:10] for t in result.t.values] == DATES and list(result.bands.values) == ["B04", "B08"]
    assert "spatial_ref" not in result.coords and "x" not in result.coords


def test_single_geometry_and_feature(cube, pixels):
    polygon = POLYGONS["field_a"]
    expected = reference("mean", masked(pixels, utm(wgs84(polygon))))
    geometry = shapely.geometry.mapping(wgs84(polygon))
    for given in (geometry, {"type": "Feature", "properties": None, "geometry": geometry}):
        result = aggregate_spatial(cube, given, "mean")
        assert result.shape == (1, 5, 2)
        np.testing.assert_allclose(result.values[0], expected, rtol=2e-6)


def test_cube_without_time_and_bands(cube, pixels):
    flat = cube.isel(t=0, bands=1, drop=True)
    result = aggregate_spatial(flat, feature_collection(POLYGONS), "max")
    assert result.dims == ("geometry",)
    for i, name in enumerate(NAMES):
        expected = reference("max", masked(pixels, utm(wgs84(POLYGONS[name]))))[0, 1]
        np.testing.assert_allclose(result.values[i], expected, equal_nan=True)


# --- reducers: detection and the general (per-geometry) path -------------------------------------------------


def test_fast_path_detection(implementations):
    def detect(graph):
        return fast_reducer(callback(implementations, graph))

    assert detect(reducer_graph("mean")) == "mean"
    assert detect(reducer_graph("median", ignore_nodata=True)) == "median"
    assert detect(reducer_graph("count")) == "count"
    assert detect(reducer_graph("count", condition=True)) == "total_count"
    assert detect(reducer_graph("mean", ignore_nodata=False)) is None
    assert detect(reducer_graph("count", condition={"process_graph": {}})) is None
    assert detect(reducer_graph("first")) is None
    assert detect({"r": {"process_id": "mean", "arguments": {"data": [1, 2]}, "result": True}}) is None
    two_nodes = {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}},
                 "x": {"process_id": "multiply", "arguments": {"x": {"from_node": "m"}, "y": 2}, "result": True}}
    assert detect(two_nodes) is None


def test_general_reducer_per_geometry(cube, pixels, implementations, monkeypatch):
    graph = {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}},
             "q": {"process_id": "quantiles", "arguments": {"data": {"from_parameter": "data"},
                                                           "probabilities": [0.9]}},
             "e": {"process_id": "array_element", "arguments": {"data": {"from_node": "q"}, "index": 0}},
             "s": {"process_id": "subtract", "arguments": {"x": {"from_node": "e"}, "y": {"from_node": "m"}},
                   "result": True}}
    subset = {name: POLYGONS[name] for name in ("wedge", "field_a", "multi", "outside")}
    result = aggregate_spatial(cube, feature_collection(subset), callback(implementations, graph))
    assert result.dtype == np.float64
    for i, name in enumerate(subset):
        px = masked(pixels, utm(wgs84(POLYGONS[name])))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanquantile(px, 0.9, axis=-1) - np.nanmean(px, axis=-1) if px.shape[-1] else np.nan
        np.testing.assert_allclose(result.values[i], np.broadcast_to(expected, (5, 2)), rtol=1e-5, atol=1e-6,
                                   equal_nan=True, err_msg=name)


def test_ignore_nodata_false_goes_the_general_way(cube, implementations):
    result = aggregate_spatial(cube, feature_collection({"wedge": POLYGONS["wedge"], "field_a": POLYGONS["field_a"]}),
                               callback(implementations, reducer_graph("mean", ignore_nodata=False)))
    fast = aggregate_spatial(cube, feature_collection({"field_a": POLYGONS["field_a"]}), "mean")
    assert np.isnan(result.values[0, [1, 3]]).all() and not np.isnan(result.values[0, [0, 2, 4]]).any()
    np.testing.assert_allclose(result.values[1], fast.values[0], rtol=2e-6)


def test_reducer_context_reaches_the_child_graph(cube, implementations):
    graph = {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}},
             "a": {"process_id": "add", "arguments": {"x": {"from_node": "m"}, "y": {"from_parameter": "context"}},
                   "result": True}}
    polygons = {"field_a": POLYGONS["field_a"]}
    with_context = aggregate_spatial(cube, feature_collection(polygons), callback(implementations, graph), context=10)
    plain = aggregate_spatial(cube, feature_collection(polygons), "mean")
    np.testing.assert_allclose(with_context.values, plain.values + 10, rtol=1e-6)


def test_reducer_returning_an_array_is_refused(cube, implementations):
    graph = {"r": {"process_id": "quantiles", "arguments": {"data": {"from_parameter": "data"},
                                                           "probabilities": [0.1, 0.9]}, "result": True}}
    with pytest.raises(errors.ProcessParameterInvalid, match="single value"):
        aggregate_spatial(cube, feature_collection({"a": POLYGONS["field_a"]}), callback(implementations, graph))


def test_target_dimension(cube, pixels):
    result = aggregate_spatial(cube, feature_collection(POLYGONS), "mean", target_dimension="stats")
    assert result.dims == ("geometry", "t", "bands", "stats")
    assert list(result.stats.values) == ["value", "total_count", "valid_count"]
    wedge = result.isel(geometry=NAMES.index("wedge"))
    assert (wedge.sel(stats="total_count") == 2000).all()
    assert list(wedge.sel(stats="valid_count", bands="B08").values) == [2000, 0, 2000, 0, 2000]
    plain = aggregate_spatial(cube, feature_collection(POLYGONS), "mean")
    np.testing.assert_allclose(result.sel(stats="value").values, plain.values, equal_nan=True)
    with pytest.raises(module.TargetDimensionExists):
        aggregate_spatial(cube, feature_collection(POLYGONS), "mean", target_dimension="bands")


# --- robustness: many overlaps, slabs, blocks, grid orientation, points and lines -------------------------


def test_identical_polygons_all_get_their_pixels(cube, monkeypatch):
    same = {f"p{i}": POLYGONS["field_b"] for i in range(30)}
    layered = aggregate_spatial(cube, feature_collection(same), "count")
    assert (layered.values == layered.values[0]).all() and layered.values[0, 0, 0] > 0
    monkeypatch.setattr(zonal, "MAX_OVERLAP_PAIRS", 10)  # → every polygon burned alone
    alone = aggregate_spatial(cube, feature_collection(same), "count")
    np.testing.assert_array_equal(alone.values, layered.values)


def test_slabs_and_blocks_do_not_change_values(cube, monkeypatch):
    whole = aggregate_spatial(cube, feature_collection(POLYGONS), "median")
    monkeypatch.setattr(module, "SLAB_BYTES", 1)  # one date per slab
    monkeypatch.setattr(zonal, "BLOCK", 7)
    monkeypatch.setattr(zonal.memberships, "__defaults__", (7, zonal.MAX_MEMBERSHIPS))
    np.testing.assert_array_equal(aggregate_spatial(cube, feature_collection(POLYGONS), "median").values, whole.values)


def test_membership_limit(cube, monkeypatch):
    monkeypatch.setattr(zonal.memberships, "__defaults__", (zonal.BLOCK, 1000))
    with pytest.raises(errors.ProcessParameterInvalid, match="more than 1,000 pixels"):
        aggregate_spatial(cube, feature_collection(POLYGONS), "mean")


@pytest.mark.parametrize("south_up", [False, True])
def test_synthetic_grid_integer_values_points_and_lines(south_up):
    ys = 1000 - 10 * (np.arange(30) + 0.5)
    values = np.arange(30 * 40, dtype=np.int32).reshape(30, 40)
    grid = xr.DataArray(values, dims=("y", "x"), coords={"y": ys, "x": 10 * (np.arange(40) + 0.5)})
    if south_up:
        grid = grid.isel(y=slice(None, None, -1))
    grid = grid.rio.write_crs("EPSG:32632")
    polygon = shapely.Polygon([(31.3, 903.1), (152.2, 921.7), (97.6, 987.4)])
    geoms = {"polygon": polygon, "point": shapely.Point(123.4, 876.5), "line": shapely.LineString([(5.5, 705.5), (35, 705.5)]),
             "two points": shapely.MultiPoint([(1, 999), (399, 701)])}
    document = feature_collection(geoms, crs="EPSG:32632", transform=lambda g: g)
    result = aggregate_spatial(grid, document, "sum")
    x, y = np.meshgrid(grid.x.values, grid.y.values)
    assert result.values[0] == grid.values[shapely.contains_xy(polygon, x, y)].sum()
    assert result.values[1] == values[12, 12]  # the pixel holding the point
    assert result.values[2] == values[29, 0:4].sum()  # the pixels the line runs through
    assert result.values[3] == values[0, 0] + values[29, 39]
    assert result.dtype == np.float64


# --- geometries argument: formats and limits -------------------------------------------------------------


def test_geodataframe_and_vector_cube_as_geometries(cube):
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"name": NAMES, "rank": np.arange(len(NAMES))},
                             geometry=list(POLYGONS.values()), crs=32632)
    from_frame = aggregate_spatial(cube, frame, "mean")
    from_json = aggregate_spatial(cube, feature_collection(POLYGONS, crs="EPSG:32632", transform=lambda g: g), "mean")
    np.testing.assert_array_equal(from_frame.values, from_json.values)
    assert list(from_frame["name"].values) == NAMES
    from_cube = aggregate_spatial(cube, from_frame, "mean")  # a vector cube (e.g. from load_geojson)
    np.testing.assert_array_equal(from_cube.values, from_json.values)
    assert list(from_cube["name"].values) == NAMES


@pytest.mark.parametrize("geometries, words", [
    ("https://example.com/fields.geojson", "URLs are not fetched"),
    ("http://169.254.169.254/latest/meta-data", "URLs are not fetched"),
    ("file:///etc/passwd", "URLs are not fetched"),
    ({"type": "GeometryCollection", "geometries": []}, "GeometryCollection is not supported"),
    ({"type": "FeatureCollection", "features": []}, "no features"),
    ({"type": "FeatureCollection", "features": [{"type": "Polygon"}]}, "features[0] is not a GeoJSON Feature"),
    ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[1, 2]]}}, "malformed Polygon"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]], "crs": {"type": "name",
      "properties": {"name": "EPSG:99999999"}}}, "unknown CRS"),
    ({"type": "Point", "coordinates": [float("nan"), 1.0]}, "finite"),
    ({"type": "Topology"}, "expected a GeoJSON FeatureCollection"),
    (42, "expected GeoJSON"),
])
def test_bad_geometries(cube, geometries, words):
    with pytest.raises(errors.ProcessParameterInvalid) as excinfo:
        aggregate_spatial(cube, geometries, "mean")
    assert words in excinfo.value.message
    assert excinfo.value.fields["parameter"] == "geometries"


def test_size_limits(cube, monkeypatch):
    too_many = {"type": "FeatureCollection", "features": [{"type": "Feature"}] * (geometry_input.MAX_FEATURES + 1)}
    with pytest.raises(errors.ProcessParameterInvalid, match="100,001 geometries given; at most 100,000"):
        aggregate_spatial(cube, too_many, "mean")
    monkeypatch.setattr(geometry_input, "MAX_VERTICES", 20)
    with pytest.raises(errors.ProcessParameterInvalid, match="coordinates; at most 20"):
        aggregate_spatial(cube, feature_collection(POLYGONS), "mean")


def test_registered_as_override_through_a_graph(implementations, cube):
    """The executor calls our implementation (spec defaults applied), not openeo-processes-dask's."""
    context = RunContext()
    result = implementations.call("aggregate_spatial", {
        "data": cube, "geometries": feature_collection({"a": POLYGONS["field_a"]}),
        "reducer": callback(implementations, reducer_graph("mean"))}, {}, context, "agg")
    assert result.dims == ("geometry", "t", "bands")


# --- writers: GeoJSON (WGS84), CSV, netCDF --------------------------------------------------------------


@pytest.fixture(scope="module")
def result(cube):
    return aggregate_spatial(cube, feature_collection(POLYGONS), "mean")


def test_write_geojson(result, tmp_path):
    written = write_result(result, "JSON", {}, tmp_path)
    document = json.loads(written.path.read_text())
    assert written.media_type == "application/geo+json" and document["type"] == "FeatureCollection"
    assert document["openeo:dimensions"]["bands"] == ["B04", "B08"]
    assert [t[:10] for t in document["openeo:dimensions"]["t"]] == DATES
    times = document["openeo:dimensions"]["t"]
    given = feature_collection(POLYGONS)["features"]
    for i, feature in enumerate(document["features"]):
        assert feature["properties"]["name"] == NAMES[i]
        assert shapely.geometry.shape(feature["geometry"]).equals_exact(shapely.geometry.shape(given[i]["geometry"]), 1e-12)
        for k, t in enumerate(times):
            for j, band in enumerate(["B04", "B08"]):
                value = feature["properties"][f"{t}/{band}"]
                expected = float(result.values[i, k, j])
                assert value is None if np.isnan(expected) else value == pytest.approx(expected, rel=1e-6)


def test_write_csv(result, tmp_path):
    rows = list(csv.DictReader(write_result(result, "CSV", {"include_geometry": True}, tmp_path).path.open()))
    assert len(rows) == len(NAMES) * 5
    assert list(rows[0])[:4] == ["feature_index", "name", "rank", "date"]
    for row in rows:
        i, k = int(row["feature_index"]), DATES.index(row["date"][:10])
        for j, band in enumerate(["B04", "B08"]):
            expected = float(result.values[i, k, j])
            assert row[band] == "" if np.isnan(expected) else float(row[band]) == pytest.approx(expected, rel=1e-6)
        # the CSV writer rounds WKT to 6 decimals (0.1 m in degrees)
        assert shapely.from_wkt(row["geometry"]).equals_exact(result["geometry"].values[i], 1e-6)


def test_write_netcdf(result, tmp_path):
    written = write_result(result, "netCDF", {}, tmp_path)
    with xr.open_dataset(written.path) as ds:
        assert set(ds.data_vars) >= {"B04", "B08"} and ds["B08"].dims == ("geometry", "t")
        np.testing.assert_array_equal(ds["B08"].values, result.sel(bands="B08").values)
        assert list(pd.to_datetime(ds.t.values).strftime("%Y-%m-%d")) == DATES
        assert "4326" in ds["crs"].attrs["crs_wkt"] or "WGS 84" in ds["crs"].attrs["crs_wkt"]
        geometries = shapely.from_wkt(ds["geometry"].values.astype(str))
        # WKT rounded to 6 decimals by the writer (shapely.to_wkt's default)
        assert all(a.equals_exact(b, 1e-6) for a, b in zip(geometries, result["geometry"].values))


def test_write_netcdf_keeps_feature_properties(result, tmp_path):
    with xr.open_dataset(write_result(result, "netCDF", {}, tmp_path).path) as ds:
        assert list(ds["name"].values) == NAMES and list(ds["rank"].values) == list(range(len(NAMES)))
