"""Per-parcel time series ("checks by monitoring") through the real openeo client: aggregate_spatial with
three field polygons in WGS84, downloaded as JSON (GeoJSON), CSV and netCDF, checked against an
independent computation: the raw COGs read with rasterio, decoded (nodata 0 → NaN, DN × 0.0001), and a
numpy mask of the pixels whose centre lies in each polygon.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio
import shapely
import xarray as xr
from pyproj import Transformer
from rasterio.windows import from_bounds

from backend.demo import DEMO_S2_COLLECTION

# The official openEO workflow-test area (EPSG:32632); the fields lie inside it.
AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
DATES = ["2022-06-02", "2022-06-12", "2022-06-17", "2022-06-22", "2022-06-27"]
BANDS = ["B04", "B08"]
# Vertices at odd fractions of a metre: no pixel centre (x = ...5, y = ...5) lies on an edge.
FIELDS_UTM = {
    "P-001": shapely.box(679803.3, 5151203.7, 680096.1, 5151497.2),
    "P-002": shapely.Polygon([(680153.1, 5151553.3), (680598.7, 5151611.9), (680551.3, 5151872.6),
                              (680187.4, 5151833.8)]),
    "P-003": shapely.Polygon([(679905.2, 5151402.9), (680303.6, 5151451.1), (680102.7, 5151703.4)]),  # overlaps P-001
}
TO_WGS84 = Transformer.from_crs(32632, 4326, always_xy=True)
TO_UTM = Transformer.from_crs(4326, 32632, always_xy=True)


def _project(geom, transformer):
    return shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


FIELDS_WGS84 = {name: _project(geom, TO_WGS84) for name, geom in FIELDS_UTM.items()}


def field_collection() -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"parcel": name}, "geometry": shapely.geometry.mapping(geom)}
        for name, geom in FIELDS_WGS84.items()]}


@pytest.fixture
def connection(live_server):
    name, password = live_server.new_user()
    return openeo.connect(live_server.url).authenticate_basic(name, password)


@pytest.fixture(scope="module")
def expected(session_data_dir) -> np.ndarray:
    """(field, date, band) means from the raw COGs and pixel-centre masks of the WGS84 polygons."""
    catalog_dir = session_data_dir / "demo-catalog"
    out = np.full((len(FIELDS_UTM), len(DATES), len(BANDS)), np.nan)
    for k, date in enumerate(DATES):
        for j, band in enumerate(BANDS):
            path = catalog_dir / DEMO_S2_COLLECTION / f"S2_DEMO_T1_{date.replace('-', '')}" / f"{band}.tif"
            with rasterio.open(path) as src:
                window = from_bounds(AREA["west"], AREA["south"], AREA["east"], AREA["north"], src.transform)
                raw = src.read(1, window=window).astype("float64")
                raw[raw == src.nodata] = np.nan
                transform = src.window_transform(window)
            values = raw * 0.0001
            rows, cols = np.indices(values.shape)
            x, y = rasterio.transform.xy(transform, rows.ravel(), cols.ravel(), offset="center")
            x, y = np.asarray(x).reshape(values.shape), np.asarray(y).reshape(values.shape)
            for i, geom in enumerate(FIELDS_WGS84.values()):
                mask = shapely.contains_xy(_project(geom, TO_UTM), x, y)
                assert mask.sum() > 100
                out[i, k, j] = np.nanmean(values[mask])
    return out


def _time_series(connection):
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA,
                                      temporal_extent=["2022-06-01", "2022-07-01"], bands=BANDS)
    return cube.aggregate_spatial(geometries=field_collection(), reducer="mean")


def test_parcel_time_series_as_geojson(connection, expected, tmp_path: Path):
    target = tmp_path / "ts.json"
    _time_series(connection).download(target, format="JSON")
    document = json.loads(target.read_text())
    assert document["type"] == "FeatureCollection" and len(document["features"]) == 3
    times = document["openeo:dimensions"]["t"]
    assert [t[:10] for t in times] == DATES and document["openeo:dimensions"]["bands"] == BANDS
    for i, (name, feature) in enumerate(zip(FIELDS_WGS84, document["features"])):
        assert feature["properties"]["parcel"] == name and feature["properties"]["feature_index"] == i
        assert shapely.geometry.shape(feature["geometry"]).equals_exact(FIELDS_WGS84[name], 1e-12)  # WGS84, as sent
        actual = np.array([[feature["properties"][f"{t}/{band}"] for band in BANDS] for t in times], dtype=float)
        np.testing.assert_allclose(actual, expected[i], rtol=1e-5, err_msg=name)
    # June: a field's NIR is well above its red
    assert (expected[..., 1] > expected[..., 0]).all()


def test_parcel_time_series_as_csv(connection, expected, tmp_path: Path):
    target = tmp_path / "ts.csv"
    _time_series(connection).download(target, format="CSV")
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 3 * len(DATES)
    assert list(rows[0]) == ["feature_index", "parcel", "date", *BANDS]
    for row in rows:
        i, k = int(row["feature_index"]), DATES.index(row["date"][:10])
        assert row["parcel"] == list(FIELDS_UTM)[i]
        np.testing.assert_allclose([float(row[band]) for band in BANDS], expected[i, k], rtol=1e-5)


def test_parcel_time_series_as_netcdf(connection, expected, tmp_path: Path):
    target = tmp_path / "ts.nc"
    _time_series(connection).download(target, format="netCDF")
    with xr.open_dataset(target) as ds:
        assert ds["B08"].dims == ("geometry", "t") and ds.sizes == {"geometry": 3, "t": len(DATES)}
        assert [str(t)[:10] for t in ds.t.values] == DATES
        actual = np.stack([ds[band].values for band in BANDS], axis=-1)
        np.testing.assert_allclose(actual, expected, rtol=1e-5)
        geometries = shapely.from_wkt(ds["geometry"].values.astype(str))
        for geom, field in zip(geometries, FIELDS_WGS84.values()):
            assert geom.equals_exact(field, 1e-6)  # WKT with 6 decimals
        assert "WGS 84" in ds["crs"].attrs["crs_wkt"]


def test_geometries_url_is_refused_not_fetched(connection):
    """A URL string as geometries (server-side request forgery if fetched) is answered with a clear 400."""
    graph = {
        "load": {"process_id": "load_collection", "arguments": {
            "id": DEMO_S2_COLLECTION, "spatial_extent": AREA, "temporal_extent": ["2022-06-01", "2022-06-03"],
            "bands": ["B08"]}},
        "agg": {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_node": "load"}, "geometries": "http://169.254.169.254/latest/meta-data/",
            "reducer": {"process_graph": {"mean": {"process_id": "mean", "arguments": {
                "data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "agg"}, "format": "JSON"},
                 "result": True}}
    with pytest.raises(openeo.rest.OpenEoApiError) as excinfo:
        connection.execute(graph)
    assert excinfo.value.http_status_code == 400
    assert excinfo.value.code == "ProcessParameterInvalid", excinfo.value.message
    assert "URLs are not fetched" in excinfo.value.message
