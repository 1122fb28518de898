"""aggregate_temporal with a UDF reducer through the real openeo client: each interval reduced by the
UDF in the sandbox, checked against numpy on the same input; the same graph without a UDF is unchanged."""

from __future__ import annotations

import numpy as np
import xarray as xr

from tests.e2e.test_udf import _cube, _download, _udf, connection, udf_server  # noqa: F401 (fixtures)

INTERVALS = [["2022-06-01", "2022-06-10"], ["2022-06-10", "2022-06-20"], ["2022-07-01", "2022-07-02"]]


def test_aggregate_temporal_with_a_udf_reducer_matches_numpy(connection, tmp_path):  # noqa: F811
    reference = _download(_cube(connection), tmp_path / "in.nc")
    udf = _udf("""
        import xarray

        def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
            return cube.max(dim="t") * 2
        """)
    result = _cube(connection).aggregate_temporal(intervals=INTERVALS, reducer=udf)
    result.download(tmp_path / "out.nc", format="netCDF")
    with xr.open_dataset(tmp_path / "out.nc") as dataset:
        actual = dataset[["B04", "B08"]].to_array("bands").load()
    assert [str(t)[:10] for t in actual["t"].values] == ["2022-06-01", "2022-06-10", "2022-07-01"]
    times = reference["t"].values
    for index, (start, end) in enumerate(INTERVALS):
        inside = (times >= np.datetime64(start)) & (times < np.datetime64(end))
        got = actual.isel(t=index).transpose("bands", "y", "x").values
        if inside.any():
            expected = reference.isel(t=np.flatnonzero(inside)).max(dim="t").transpose("bands", "y", "x") * 2
            np.testing.assert_allclose(got, expected.values, rtol=1e-6)
        else:
            assert np.isnan(got).all()


def test_aggregate_temporal_without_a_udf_is_unchanged(connection, tmp_path):  # noqa: F811
    reference = _download(_cube(connection), tmp_path / "in.nc")
    result = _cube(connection).aggregate_temporal(intervals=INTERVALS[:2], reducer="mean")
    result.download(tmp_path / "out.nc", format="netCDF")
    with xr.open_dataset(tmp_path / "out.nc") as dataset:
        actual = dataset[["B04", "B08"]].to_array("bands").load()
    times = reference["t"].values
    for index, (start, end) in enumerate(INTERVALS[:2]):
        inside = (times >= np.datetime64(start)) & (times < np.datetime64(end))
        expected = reference.isel(t=np.flatnonzero(inside)).mean(dim="t").transpose("bands", "y", "x")
        np.testing.assert_allclose(actual.isel(t=index).transpose("bands", "y", "x").values, expected.values,
                                   rtol=1e-5)
