"""Fixes found with the official suite's workflow tests (conformance WP6, tests/workflows L1–L3).

Each test runs the registered implementation the way a graph node runs it (through the Executor, with
child process graphs as callbacks) and checks the spec's answer, then shows that the unfixed
openeo-processes-dask function gets it wrong (raises or answers something else):

* apply_dimension (backend/processing/processes/apply_dimension.py): labels kept when the process
  returns as many values (test_apply_dimension_quantiles_0), ``array_element(label=...)`` in the
  callback (test_apply_dimension_ndvi_2), target dimensions (the spec's three cases);
* order/sort on N-D arrays (backend/processing/processes/ordering.py): ``order()`` with the default
  ``nodata=null`` in apply_dimension (test_apply_dimension_order).
"""

from __future__ import annotations

import inspect

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from apicore import errors
from backend.processing.engine.executor import Callback, Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations

NAN = np.nan


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def library(process_id: str):
    from openeo_processes_dask import process_implementations as dask_processes

    functions = {name.lstrip("_"): function for name, function in inspect.getmembers(dask_processes, inspect.isfunction)
                 if function.__module__.startswith("openeo_processes_dask")}
    return functions[process_id]


def s2_cube(chunked: bool = False) -> xr.DataArray:
    """bands B04/B08 × 2 dates × 2×3 pixels, like the suite's cube_red_nir (with one no-data value)."""
    red = np.array([[[0.1, 0.2, 0.3], [0.4, NAN, 0.6]], [[0.2, 0.2, 0.2], [0.1, 0.1, 0.1]]])
    nir = np.array([[[0.5, 0.1, 0.9], [0.8, 0.7, 0.3]], [[0.6, 0.6, 0.6], [0.3, 0.3, 0.3]]])
    values = np.stack([red, nir]).astype("float32")
    data = da.from_array(values, chunks=(1, 1, 2, 3)) if chunked else values
    return xr.DataArray(data, dims=("bands", "t", "y", "x"), attrs={"crs": "EPSG:32632"},
                        coords={"bands": ["B04", "B08"], "t": pd.to_datetime(["2022-06-02", "2022-06-12"]),
                                "y": [5151915.0, 5151905.0], "x": [679725.0, 679735.0, 679745.0],
                                "spatial_ref": 0})


def node(process_id: str, result: bool = False, **arguments) -> dict:
    return {"process_id": process_id, "arguments": arguments, **({"result": True} if result else {})}


def apply_dimension_graph(callback: dict, dimension: str, target_dimension: str | None = None) -> dict:
    arguments = {"data": {"from_parameter": "cube"}, "process": {"process_graph": callback}, "dimension": dimension}
    if target_dimension is not None:
        arguments["target_dimension"] = target_dimension
    return {"ad": node("apply_dimension", result=True, **arguments)}


def run(implementations, graph: dict, cube: xr.DataArray):
    return Executor(implementations, RunContext()).run(Graph.parse(graph), {"cube": cube})


def callback(implementations, child: dict) -> Callback:
    return Callback(Executor(implementations, RunContext()), Graph.parse(child), {})


QUANTILES_2 = {"q": node("quantiles", result=True, data={"from_parameter": "data"}, probabilities=[0.5, 0.75])}
QUANTILES_3 = {"q": node("quantiles", result=True, data={"from_parameter": "data"}, probabilities=[0.25, 0.5, 0.75])}
NDVI_BY_LABEL = {  # the suite's test_apply_dimension_ndvi_2: concat the bands and their NDVI
    "red": node("array_element", data={"from_parameter": "data"}, label="B04"),
    "nir": node("array_element", data={"from_parameter": "data"}, label="B08"),
    "d": node("subtract", x={"from_node": "nir"}, y={"from_node": "red"}),
    "s": node("add", x={"from_node": "nir"}, y={"from_node": "red"}),
    "ndvi": node("divide", x={"from_node": "d"}, y={"from_node": "s"}),
    "cat": node("array_concat", result=True, array1={"from_parameter": "data"}, array2={"from_node": "ndvi"}),
}


# --- apply_dimension ---------------------------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True])
def test_apply_dimension_keeps_labels_for_as_many_values(implementations, chunked):
    cube = s2_cube(chunked)
    result = run(implementations, apply_dimension_graph(QUANTILES_2, "bands"), cube)
    assert result.dims == cube.dims and result["bands"].values.tolist() == ["B04", "B08"]
    expected = np.nanquantile(cube.values, [0.5, 0.75], axis=0)
    np.testing.assert_allclose(result.values, expected, rtol=1e-6)
    assert result["t"].values.tolist() == cube["t"].values.tolist() and int(result["spatial_ref"]) == 0
    assert result.attrs["crs"] == "EPSG:32632"
    # the library compares instead of assigning: the band labels are lost
    wrong = library("apply_dimension")(cube, callback(implementations, QUANTILES_2), "bands")
    assert "bands" not in wrong.coords or wrong["bands"].values.tolist() != ["B04", "B08"]


def test_apply_dimension_passes_labels_to_the_callback(implementations):
    cube = s2_cube()
    result = run(implementations, apply_dimension_graph(NDVI_BY_LABEL, "bands"), cube)
    assert result.sizes["bands"] == 3 and result["bands"].values.tolist() == [0, 1, 2]  # 3 values from 2
    red, nir = cube.sel(bands="B04", drop=True), cube.sel(bands="B08", drop=True)
    xr.testing.assert_allclose(result.isel(bands=2, drop=True), (nir - red) / (nir + red))
    xr.testing.assert_equal(result.isel(bands=[0, 1]).drop_vars("bands"), cube.drop_vars("bands"))
    # the library gives the callback no labels: array_element(label=...) fails with ArrayNotLabeled
    with pytest.raises(errors.OpenEOError, match="ArrayNotLabeled|not a labeled array"):
        library("apply_dimension")(cube, callback(implementations, NDVI_BY_LABEL), "bands")


def test_apply_dimension_new_target_dimension(implementations):
    cube = s2_cube()
    result = run(implementations, apply_dimension_graph(QUANTILES_3, "t", target_dimension="q"), cube)
    assert result.dims == ("bands", "q", "y", "x") and result["q"].values.tolist() == [0, 1, 2]
    np.testing.assert_allclose(result.values, np.moveaxis(np.nanquantile(cube.values, [0.25, 0.5, 0.75], axis=1), 0, 1),
                               rtol=1e-6)
    # the library passes keepdims=True to the callback whenever target_dimension is set: an extra axis
    with pytest.raises(Exception, match="unexpected number of dimensions"):
        library("apply_dimension")(cube, callback(implementations, QUANTILES_3), "t", target_dimension="q")


def test_apply_dimension_target_with_one_label_and_with_several(implementations):
    cube = s2_cube().isel(bands=[0])  # one band: case 2, the time series fills `bands`
    result = run(implementations, apply_dimension_graph(QUANTILES_3, "t", target_dimension="bands"), cube)
    assert result.dims == ("bands", "y", "x") and result["bands"].values.tolist() == [0, 1, 2]
    np.testing.assert_allclose(result.values, np.nanquantile(cube.values[0], [0.25, 0.5, 0.75], axis=0), rtol=1e-6)
    # several labels in the existing target (the suite's test_apply_dimension_quantiles_1 with B04 and B08):
    # the spec does not define it; refused with an explanation
    with pytest.raises(errors.OpenEOError, match="already exists with 2 labels"):
        run(implementations, apply_dimension_graph(QUANTILES_3, "t", target_dimension="bands"), s2_cube())


def test_apply_dimension_with_a_reducer_and_errors(implementations):
    cube = s2_cube()
    mean = {"m": node("mean", result=True, data={"from_parameter": "data"})}
    result = run(implementations, apply_dimension_graph(mean, "t"), cube)
    assert result.sizes["t"] == 1 and result["t"].values.tolist() == [0]
    np.testing.assert_allclose(result.isel(t=0).values, np.nanmean(cube.values, axis=1), rtol=1e-6)
    with pytest.raises(errors.OpenEOError, match="DimensionNotAvailable|does not exist"):
        run(implementations, apply_dimension_graph(mean, "z"), cube)


# --- order / sort on N-D arrays ----------------------------------------------------------------

ROWS = np.array([[3.0, NAN, 1.0, 2.0], [5.0, 5.0, NAN, NAN]])


@pytest.mark.parametrize(("asc", "nodata", "expected"), [
    (True, True, [[2, 3, 0, 1], [0, 1, 2, 3]]),
    (True, False, [[1, 2, 3, 0], [2, 3, 0, 1]]),
    (True, None, [[2, 3, 0, NAN], [0, 1, NAN, NAN]]),  # no-data removed: rows padded with null
    (False, True, [[0, 3, 2, 1], [0, 1, 2, 3]]),
    (False, False, [[1, 0, 3, 2], [2, 3, 0, 1]]),
    (False, None, [[0, 3, 2, NAN], [0, 1, NAN, NAN]]),
])
@pytest.mark.parametrize("chunked", [False, True])
def test_order_along_the_axis(implementations, asc, nodata, expected, chunked):
    data = da.from_array(ROWS.T, chunks=(2, 1)) if chunked else ROWS.T  # the axis is axis 0 here
    result = implementations.call("order", {"data": data, "asc": asc, "nodata": nodata}, {"axis": 0},
                                  RunContext(), "n")
    assert isinstance(result, da.Array) == chunked  # dask stays lazy
    np.testing.assert_array_equal(np.asarray(result).T, expected)
    sorted_values = implementations.call("sort", {"data": data, "asc": asc, "nodata": nodata}, {"axis": 0},
                                         RunContext(), "n")
    want = np.where(np.isnan(expected), NAN, np.take_along_axis(ROWS, np.nan_to_num(expected).astype(int), axis=1))
    np.testing.assert_array_equal(np.asarray(sorted_values).T, want)


def test_order_library_is_wrong():
    with pytest.raises(ValueError, match="not supported for arrays with more than one dimension"):
        library("order")(ROWS, nodata=None, axis=1)
    # descending with nodata=true: the library puts the no-data value first
    assert library("order")(np.array([3.0, NAN, 1.0]), asc=False, nodata=True).tolist() != [0, 2, 1]
    assert library("sort")(ROWS, nodata=None, axis=1).ndim == 1  # flattened


def test_order_1d_and_lists(implementations):
    def call(process_id, **arguments):
        return implementations.call(process_id, arguments, {}, RunContext(), "n")

    assert call("order", data=np.array([3.0, NAN, 1.0]), asc=False, nodata=True).tolist() == [0, 2, 1]
    assert call("order", data=np.array([3.0, NAN, 1.0])).tolist() == [2, 0]  # removed in 1-D
    assert call("sort", data=np.array([3.0, NAN, 1.0])).tolist() == [1.0, 3.0]
    dates = np.array(["2022-06-12", "NaT", "2022-06-02"], dtype="datetime64[ns]")
    assert call("order", data=dates, nodata=False).tolist() == [1, 2, 0]
    assert call("order", data=[3, None, 1], nodata=False) == [1, 2, 0]  # JSON lists: arrays.py's fix
    assert call("sort", data=["b", "a"]) == ["a", "b"]


def test_apply_dimension_order_in_a_graph(implementations):
    cube = s2_cube()  # the suite's test_apply_dimension_order: order(d) over bands
    child = {"o": node("order", result=True, data={"from_parameter": "data"})}
    result = run(implementations, apply_dimension_graph(child, "bands"), cube)
    assert result["bands"].values.tolist() == ["B04", "B08"]  # two values from two: labels kept
    first = result.isel(bands=0).values
    assert first[0, 0, 0] == 0 and first[0, 0, 1] == 1  # 0.1 < 0.5; 0.2 > 0.1
    assert first[0, 1, 1] == 1 and np.isnan(result.isel(bands=1).values[0, 1, 1])  # B04 no-data removed
