"""run_udf on a vector cube through the real openeo client: apply_vectorcube (the openeo package's
contract: a GeoDataFrame and the values) and apply_datacube on per-parcel time series."""

from __future__ import annotations

import json
import textwrap

import pytest
import shapely
from openeo.rest import OpenEoApiError

from tests.e2e.test_parcel_timeseries import FIELDS_UTM, FIELDS_WGS84, _time_series
from tests.e2e.test_udf import connection, udf_server  # noqa: F401  (the UDF server with small limits)

CENTROIDS_AND_DOUBLE = textwrap.dedent("""
    import geopandas
    import xarray

    def apply_vectorcube(geometries: geopandas.GeoDataFrame, cube: xarray.DataArray, context: dict):
        keep = geometries.index[geometries["parcel"] != "P-002"]  # drop one parcel
        points = geometries.loc[keep].copy()
        points["geometry"] = points.geometry.centroid
        points["area_m2"] = geometries.loc[keep].to_crs(32632).area
        return points, cube.isel(geometry=list(keep)) * 2
    """)


def _features(cube, tmp_path) -> dict:
    cube.download(tmp_path / "out.json", format="JSON")
    return json.loads((tmp_path / "out.json").read_text())


def test_apply_vectorcube_returns_new_geometries_properties_and_values(connection, tmp_path):  # noqa: F811
    before = _features(_time_series(connection), tmp_path)
    after = _features(_time_series(connection).run_udf(CENTROIDS_AND_DOUBLE, runtime="Python"), tmp_path)
    assert [f["properties"]["parcel"] for f in after["features"]] == ["P-001", "P-003"]
    for feature in after["features"]:
        name = feature["properties"]["parcel"]
        field = FIELDS_WGS84[name]
        assert shapely.geometry.shape(feature["geometry"]).equals_exact(field.centroid, 1e-9)  # WGS84 kept
        assert feature["properties"]["area_m2"] == pytest.approx(FIELDS_UTM[name].area, rel=1e-3)
        source = next(f for f in before["features"] if f["properties"]["parcel"] == name)
        values = {key: value for key, value in source["properties"].items() if "/" in key}
        assert values and all(feature["properties"][key] == pytest.approx(2 * value, rel=1e-6)
                              for key, value in values.items())


def test_apply_datacube_on_a_vector_cube_keeps_its_geometries(connection, tmp_path):  # noqa: F811
    code = textwrap.dedent("""
        from openeo.udf import XarrayDataCube

        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            return XarrayDataCube(cube.get_array() + context["add"])
        """)
    before = _features(_time_series(connection), tmp_path)
    after = _features(_time_series(connection).run_udf(code, runtime="Python", context={"add": 10}), tmp_path)
    assert len(after["features"]) == 3
    for old, new in zip(before["features"], after["features"]):
        assert new["geometry"] == old["geometry"] and new["properties"]["parcel"] == old["properties"]["parcel"]
        for key, value in old["properties"].items():
            if "/" in key:
                assert new["properties"][key] == pytest.approx(value + 10, rel=1e-6)


def test_a_vector_udf_that_loses_its_geometries_is_explained(connection, tmp_path):  # noqa: F811
    code = textwrap.dedent("""
        from openeo.udf import XarrayDataCube

        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            return XarrayDataCube(cube.get_array().isel(geometry=[0]))
        """)
    with pytest.raises(OpenEoApiError) as caught:
        _time_series(connection).run_udf(code, runtime="Python").download(tmp_path / "x.json", format="JSON")
    assert caught.value.http_status_code == 400 and caught.value.code == "UdfFailed"
    assert "for a vector cube of 3 geometries" in caught.value.message and "apply_vectorcube" in caught.value.message
