"""load_geojson: GeoJSON → the vector cube aggregate_spatial makes and the vector writers write."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
import xarray as xr

from apicore import errors
from backend.processing.engine.executor import RunContext
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations
from backend.processing.processes.aggregate_spatial import aggregate_spatial
from backend.processing.processes.load_geojson import load_geojson
from backend.processing.writers.vector import write_csv, write_geojson

SQUARE = {"type": "Polygon", "coordinates": [[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0], [0.0, 0.0]]]}
LINE = {"type": "LineString", "coordinates": [[5.0, 50.0], [6.0, 51.0]]}
POINT = {"type": "Point", "coordinates": [11.5, 46.5]}
PARCELS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": "p1", "geometry": SQUARE,
     "properties": {"name": "north", "area": 4.5, "crop": 1, "ndvi": [0.1, 0.2, 0.3]}},
    {"type": "Feature", "id": "p2", "geometry": LINE,
     "properties": {"name": "south", "area": None, "crop": 2, "ndvi": [0.4]}},
    {"type": "Feature", "id": "p3", "geometry": POINT, "properties": {"name": "east", "crop": 3}},
]}


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def call(implementations, **arguments):
    return implementations.call("load_geojson", arguments, {}, RunContext(), "n")


def test_geometries_and_properties_round_trip_through_the_geojson_writer(implementations, tmp_path):
    cube = call(implementations, data=PARCELS)  # properties: the spec default []
    assert cube.dims == ("geometry",) and cube.sizes["geometry"] == 3
    assert np.isnan(cube.values).all()  # no property chosen: no values
    assert cube.xvec.geom_coords_indexed["geometry"].crs.to_epsg() == 4326
    written = json.loads(write_geojson(cube, {}, tmp_path).path.read_text())
    for original, feature in zip(PARCELS["features"], written["features"]):
        assert shapely.geometry.shape(feature["geometry"]).equals(shapely.geometry.shape(original["geometry"]))
        properties = feature["properties"]
        assert properties["id"] == original["id"]
        for key, value in original["properties"].items():
            assert properties[key] == (json.dumps(value) if isinstance(value, list) else value), key


def test_one_scalar_property_is_a_single_label(implementations):
    cube = call(implementations, data=PARCELS, properties=["area"])
    assert cube.dims == ("geometry", "properties") and list(cube.properties.values) == ["area"]
    np.testing.assert_array_equal(cube.values[:, 0], [4.5, np.nan, np.nan])  # null and missing: no-data
    assert list(cube.coords["name"].values) == ["north", "south", "east"]  # other properties stay attached


def test_one_array_property_is_indexed_by_position(implementations):
    cube = call(implementations, data=PARCELS, properties=["ndvi"])
    assert list(cube.properties.values) == [0, 1, 2]
    np.testing.assert_array_equal(cube.values, [[0.1, 0.2, 0.3], [0.4, np.nan, np.nan], [np.nan] * 3])


def test_several_properties_are_labelled_by_name(implementations, tmp_path):
    cube = call(implementations, data=PARCELS, properties=["crop", "area"])
    assert list(cube.properties.values) == ["crop", "area"] and cube.dtype == np.float64
    np.testing.assert_array_equal(cube.values, [[1, 4.5], [2, np.nan], [3, np.nan]])
    table = write_csv(cube, {}, tmp_path).path.read_text().splitlines()  # the writers take the 2-D cube
    assert table[0].split(",")[-2:] == ["crop", "area"] and table[1].endswith("1.0,4.5")
    with pytest.raises(errors.ProcessParameterInvalid, match="non-scalar"):
        call(implementations, data=PARCELS, properties=["crop", "ndvi"])


def test_single_feature_geometry_and_named_crs(tmp_path):
    cube = load_geojson({"type": "Feature", "geometry": POINT, "properties": {"a": 1}})
    assert cube.sizes["geometry"] == 1 and cube.coords["a"].values.tolist() == [1]
    cube = load_geojson({"type": "Point", "coordinates": [680000.0, 5151500.0],
                         "crs": {"type": "name", "properties": {"name": "EPSG:32632"}}})
    assert cube.xvec.geom_coords_indexed["geometry"].crs.to_epsg() == 32632
    lon, lat = json.loads(write_geojson(cube, {}, tmp_path).path.read_text())["features"][0]["geometry"]["coordinates"]
    assert lon == pytest.approx(11.3456, abs=1e-3) and lat == pytest.approx(46.4930, abs=1e-3)  # WGS84


def test_the_cube_works_as_aggregate_spatial_geometries():
    raster = xr.DataArray(np.arange(16, dtype=np.float32).reshape(4, 4), dims=("y", "x"),
                          coords={"y": [3.5, 2.5, 1.5, 0.5], "x": [0.5, 1.5, 2.5, 3.5]})
    zones = load_geojson({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": SQUARE, "properties": {"field": "a"}}]})
    result = aggregate_spatial(raster, zones, "mean")
    assert float(result.values[0]) == pytest.approx(np.mean([8, 9, 12, 13]))  # the 2x2 pixels in the square
    assert list(result.coords["field"].values) == ["a"]


@pytest.mark.parametrize("data, words", [
    ("https://example.org/parcels.geojson", ["load_url"]),
    ({"type": "GeometryCollection", "geometries": [POINT]}, ["GeometryCollection"]),
    ({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Circle"}}]},
     ["unsupported geometry", "Circle"]),
    ({"type": "Topology"}, ["Topology"]),
])
def test_invalid_geojson_names_load_geojson(implementations, data, words):
    with pytest.raises(errors.ProcessParameterInvalid) as info:
        call(implementations, data=data)
    assert "'load_geojson'" in info.value.message and "'data'" in info.value.message
    for word in words:
        assert word in info.value.message
