"""Our fixes of openeo-processes-dask processes (backend/processing/processes/*.py).

Every case runs twice: ``test_fixed`` calls the implementation the backend registers for the process
(with the spec's defaults, as a graph node would) and must get the spec's answer; ``test_library_is_wrong``
calls the unfixed openeo-processes-dask function with the same arguments and must *not* get it (it
raises or answers something else), which proves that each case tests a fix. Answers are compared
strictly: ``true`` is not ``1.0`` (the JSON a client gets differs), ``null`` is not ``false``.
The cube processes, apply_neighborhood and the processes the library lacks have their own tests below.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from apicore import errors
from backend.processing.engine.executor import Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def library_functions() -> dict:
    from openeo_processes_dask import process_implementations as dask_processes

    return {name.lstrip("_"): function for name, function in inspect.getmembers(dask_processes, inspect.isfunction)
            if function.__module__.startswith("openeo_processes_dask")}


def call(implementations, process_id, **arguments):
    return implementations.call(process_id, arguments, {}, RunContext(), "node")


def same(got, expected) -> bool:
    """Strict equality as a JSON client sees it: types of booleans/null matter, numbers approximately."""
    if isinstance(got, np.generic):
        got = got.item()
    if isinstance(got, np.ndarray) and isinstance(expected, list):
        got = got.tolist()
    if expected is None:
        return got is None
    if isinstance(expected, bool):
        return isinstance(got, bool) and got == expected
    if isinstance(expected, (int, float)):
        return (isinstance(got, (int, float)) and not isinstance(got, bool)
                and math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12))
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(same, got, expected))
    return type(got) is type(expected) and got == expected


class Raises:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"raises {self.name}"


def u16(*values):
    return np.array(values, dtype="uint16")


# (process id, arguments, the spec's answer or Raises(openEO error code))
CASES = [
    # comparison.py: booleans not floats; null in, null out; strict types; no uint wrap in gte
    ("eq", {"x": 1, "y": 1.0}, True),
    ("eq", {"x": 1, "y": None}, None),
    ("eq", {"x": "Test", "y": "test", "case_sensitive": False}, True),
    ("neq", {"x": 0, "y": False}, True),
    ("neq", {"x": -1, "y": -1.001, "delta": 0.01}, False),
    ("gt", {"x": True, "y": 0}, False),
    ("gt", {"x": "b", "y": "a"}, False),
    ("gt", {"x": 1, "y": None}, None),
    ("gte", {"x": 2, "y": "1"}, False),
    ("gte", {"x": u16(1, 3), "y": u16(2, 2)}, [0.0, 1.0]),  # library: (1 - 2) wraps to 65535 >= 0
    ("lt", {"x": "2018-01-01T00:00:00Z", "y": "2018-01-02T00:00:00Z"}, False),
    ("lte", {"x": None, "y": None}, None),
    ("between", {"x": None, "min": 0, "max": 1}, None),
    ("between", {"x": "0.5", "min": 0, "max": 1}, False),
    ("between", {"x": True, "min": 0, "max": 1}, False),
    ("between", {"x": 1, "min": 0, "max": 1, "exclude_max": True}, False),
    ("is_nan", {"x": True}, True),
    ("is_nan", {"x": "NaN"}, True),
    ("is_valid", {"x": [None, None]}, True),
    # logic.py: three-valued logic with null, booleans
    ("and", {"x": True, "y": True}, True),
    ("and", {"x": None, "y": False}, False),
    ("and", {"x": True, "y": None}, None),
    ("or", {"x": None, "y": True}, True),
    ("or", {"x": False, "y": False}, False),
    ("xor", {"x": True, "y": None}, None),
    ("xor", {"x": True, "y": False}, True),
    ("not", {"x": False}, True),
    ("all", {"data": [True, None]}, True),
    ("all", {"data": [True, None], "ignore_nodata": False}, None),
    ("all", {"data": []}, None),
    ("any", {"data": [False, None], "ignore_nodata": False}, None),
    ("any", {"data": [True, None], "ignore_nodata": False}, True),
    # arithmetic.py: null in, null out; integer arrays without wrap-around
    ("add", {"x": None, "y": 1}, None),
    ("subtract", {"x": 1, "y": None}, None),
    ("subtract", {"x": u16(1), "y": u16(2)}, [-1.0]),
    ("add", {"x": u16(65535), "y": u16(1)}, [65536.0]),
    ("multiply", {"x": np.array([200], dtype="uint8"), "y": np.array([2], dtype="uint8")}, [400.0]),
    ("power", {"base": np.array([16], dtype="uint8"), "p": 2}, [256.0]),
    ("normalized_difference", {"x": u16(1000), "y": u16(1021)}, [-21 / 2021]),
    ("divide", {"x": None, "y": 1}, None),
    ("mod", {"x": None, "y": 2}, None),
    ("absolute", {"x": None}, None),
    ("cos", {"x": None}, None),
    ("log", {"x": None, "base": 10}, None),
    ("round", {"x": None}, None),
    ("int", {"x": None}, None),
    ("sgn", {"x": None}, None),
    ("clip", {"x": None, "min": -1, "max": 1}, None),
    ("linear_scale_range", {"x": None, "inputMin": 0, "inputMax": 100}, None),
    ("arctan2", {"y": None, "x": 1}, None),
    # statistics.py: nulls ignored (or making the result null), empty → null, quantiles of lists
    ("mean", {"data": [9, 2.5, None, -2.5]}, 3),
    ("mean", {"data": [1, 2, None], "ignore_nodata": False}, None),
    ("median", {"data": [-1, -0.5, None, 1]}, -0.5),
    ("min", {"data": [5, 2.5, None, -0.7]}, -0.7),
    ("min", {"data": []}, None),
    ("max", {"data": [1, 0, 3, None, 2], "ignore_nodata": False}, None),
    ("sum", {"data": [None, -2, -2, 0]}, -4),
    ("sum", {"data": []}, None),
    ("product", {"data": [None, -2, -2.0, -2, -2.0]}, 16),
    ("sd", {"data": [-1, 1, 3, None]}, 2),
    ("variance", {"data": [2, 3, 3, None, 4, 4, 5]}, 1.1),
    ("extrema", {"data": [5, 2.5, None, -0.7]}, [-0.7, 5]),
    ("extrema", {"data": []}, [None, None]),
    ("quantiles", {"data": [2, 4, 4, 4, 5, 5, 7, 9], "probabilities": [0.005, 0.01, 0.5]}, [2.07, 2.14, 4.5]),
    ("quantiles", {"data": [2, 4, 4, 4, 5, 5, 7, 9], "probabilities": 4}, [4, 4.5, 5.5]),
    ("quantiles", {"data": [-1, -0.5, None, 1], "probabilities": 4, "ignore_nodata": False}, [None, None, None]),
    ("first", {"data": [None, "A", "B"]}, "A"),
    ("first", {"data": [None, None, None, -1]}, -1),
    ("last", {"data": ["A", "B", None]}, "B"),
    # arrays.py: types and nulls of JSON arrays kept, spec errors
    ("array_append", {"data": [1, 2, 3], "value": 4, "label": "B01"}, Raises("ArrayNotLabeled")),
    ("array_concat", {"array1": ["a", "b"], "array2": [1, 2]}, ["a", "b", 1, 2]),
    ("array_element", {"data": [1, 2], "index": -1}, Raises("ArrayElementNotAvailable")),
    ("array_element", {"data": [1, 2], "index": 2, "return_nodata": True}, None),
    ("array_element", {"data": [], "index": 0, "return_nodata": True}, None),
    ("array_find", {"data": ["A", "B", "C"], "value": "b"}, None),
    ("array_find", {"data": [True, True], "value": False}, None),
    ("array_find", {"data": [1, None, 2, None], "value": None}, None),
    ("array_find", {"data": [[1, 2], [3, 4]], "value": [1, 2]}, None),
    ("array_interpolate_linear", {"data": [None, 1, None, 6, None, -8]}, [None, 1, 3.5, 6, -1, -8]),
    ("order", {"data": [6, -1, 2, None, 7, 4, None, 8, 3, 9, 9]}, [1, 2, 8, 5, 0, 4, 7, 9, 10]),
    ("order", {"data": [6, -1, 2, None, 7, 4, None, 8, 3, 9, 9], "asc": False, "nodata": False},
     [3, 6, 9, 10, 7, 4, 0, 5, 8, 2, 1]),
    ("sort", {"data": [6, -1, 2, None, 7, 4, None, 8, 3, 9, 9], "asc": False, "nodata": True},
     [9, 9, 8, 7, 6, 4, 3, 2, -1, None, None]),
    ("text_concat", {"data": [None, True, False, 1, -1.5, "ß"], "separator": "\n"}, "null\ntrue\nfalse\n1\n-1.5\nß"),
]


def _run(function, arguments):
    try:
        return function(**arguments)
    except Exception as exc:  # noqa: BLE001 - an openEO error or a crash, compared below
        return exc


def _matches(got, expected) -> bool:
    if isinstance(expected, Raises):
        code = getattr(got, "code", type(got).__name__)
        return isinstance(got, Exception) and expected.name in (code, type(got).__name__) or (
            isinstance(got, errors.OpenEOError) and expected.name in str(got))
    return not isinstance(got, Exception) and same(got, expected)


@pytest.mark.parametrize(("process_id", "arguments", "expected"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_fixed(implementations, process_id, arguments, expected):
    got = _run(lambda **a: call(implementations, process_id, **a), arguments)
    assert _matches(got, expected), f"{process_id}({arguments}) gave {got!r}, the spec says {expected!r}"


@pytest.mark.parametrize(("process_id", "arguments", "expected"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_library_is_wrong(process_id, arguments, expected):
    """The unfixed openeo-processes-dask function fails the same case (so the case tests a fix)."""
    function = library_functions()[process_id]
    got = _run(function, arguments)
    assert not _matches(got, expected), f"openeo-processes-dask gets {process_id}({arguments}) right: {got!r}"


# --- arrays in callbacks: the library's layout stays ----------------------------------------------

def test_array_operands_keep_the_library_layout(implementations):
    x = np.array([1.0, np.nan, 3.0])
    assert np.array_equal(call(implementations, "gt", x=x, y=2.0), np.array([0.0, np.nan, 1.0]), equal_nan=True)
    assert np.array_equal(call(implementations, "and", x=np.array([1.0, np.nan]), y=np.array([1.0, 1.0])),
                          np.array([1.0, np.nan]), equal_nan=True)
    reduced = implementations.call("mean", {"data": np.array([[1.0, 3.0], [np.nan, 2.0]])}, {"axis": 1}, RunContext(), "n")
    assert reduced.tolist() == [2.0, 2.0]  # `axis` from the reducing process reaches the library
    # float arrays are not converted (no float64 copies of float32 cubes)
    assert call(implementations, "subtract", x=np.array([1], dtype="float32"), y=1).dtype == np.float32
    assert call(implementations, "is_nodata", x=np.array([np.nan, 1.0])).tolist() == [True, False]


def test_library_is_nodata_ignores_arrays():
    assert library_functions()["is_nodata"](np.array([np.nan, 1.0])) is False


# --- callbacks over JSON arrays get index and label (array_apply, array_filter, count) -----------

def _child(process_id, **arguments):
    return {"process_graph": {"n": {"process_id": process_id, "arguments": arguments, "result": True}}}


def run_graph(implementations, process_id, **arguments):
    graph = {"n": {"process_id": process_id, "arguments": arguments, "result": True}}
    return Executor(implementations, RunContext()).run(Graph.parse(graph), {})


def test_array_apply_passes_index_and_context(implementations):
    assert run_graph(implementations, "array_apply", data=[5, 6, 7],
                     process=_child("constant", x={"from_parameter": "index"})) == [0, 1, 2]
    assert run_graph(implementations, "array_apply", data=[1, 2.5], context=2.5,
                     process=_child("multiply", x={"from_parameter": "x"}, y={"from_parameter": "context"})) == [2.5,
                                                                                                                 6.25]


def test_array_filter_and_count_with_a_condition(implementations):
    assert run_graph(implementations, "array_filter", data=[1, 2, 3, 4],
                     condition=_child("lte", x={"from_parameter": "index"}, y=2)) == [1, 2, 3]
    assert run_graph(implementations, "count", data=[0, 1, 2, 3, 4, 5, None],
                     condition=_child("gt", x={"from_parameter": "x"}, y=2)) == 3


def _callback(implementations, child):
    from backend.processing.engine.executor import Callback

    return Callback(Executor(implementations, RunContext()), Graph.parse(child["process_graph"]), {})


def test_library_callbacks_get_no_index_and_no_named_x(implementations):
    """openeo-processes-dask calls array_apply's callback with x only (a child graph reading `index` fails)
    and count's condition with a keyword x, not as the named parameter x."""
    with pytest.raises(errors.ProcessGraphInvalid, match="index"):
        library_functions()["array_apply"]([5, 6, 7], _callback(implementations, _child(
            "constant", x={"from_parameter": "index"})))
    with pytest.raises(errors.ProcessGraphInvalid, match="'x'"):
        library_functions()["count"]([0, 1, 2, 3, 4, 5, None], _callback(implementations, _child(
            "gt", x={"from_parameter": "x"}, y=2)))


# --- processes the library lacks: e, date_shift, date_between, date_difference, apply_neighborhood -

def test_missing_in_the_library_and_listed_by_us(implementations):
    lacking = {"e", "date_shift", "date_between", "date_difference", "apply_neighborhood"}
    assert not lacking & set(library_functions())
    assert lacking <= set(ProcessRegistry().ids())
    assert all(process_id in implementations for process_id in lacking)
    assert call(implementations, "e") == pytest.approx(2.718281828459)


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"date": "2020-02-01T17:22:45Z", "value": 6, "unit": "month"}, "2020-08-01T17:22:45Z"),
    ({"date": "2021-03-31T00:00:00+02:00", "value": -7, "unit": "day"}, "2021-03-24T00:00:00+02:00"),
    ({"date": "2020-02-29T17:22:45Z", "value": 1, "unit": "year"}, "2021-02-28T17:22:45Z"),
    ({"date": "2020-01-31", "value": 1, "unit": "month"}, "2020-02-29"),
    ({"date": "2016-12-31T23:59:59Z", "value": 1, "unit": "second"}, "2017-01-01T00:00:00Z"),
    ({"date": "2016-12-31T23:59:60Z", "value": 0, "unit": "second"}, "2017-01-01T00:00:00Z"),
    ({"date": "2018-12-31T17:22:45Z", "value": 1150, "unit": "millisecond"}, "2018-12-31T17:22:46.150Z"),
    ({"date": "2018-01-01", "value": 25, "unit": "hour"}, "2018-01-02"),
    ({"date": "2018-01-01", "value": -1, "unit": "hour"}, "2017-12-31"),
    ({"date": "2020-03-01T10:00:00-03:00", "value": -1, "unit": "week"}, "2020-02-23T10:00:00-03:00"),
])
def test_date_shift(implementations, arguments, expected):
    assert call(implementations, "date_shift", **arguments) == expected


def test_date_between_and_difference(implementations):
    assert call(implementations, "date_between", x="2020-01-01", min="2021-01-01", max="2022-01-01") is False
    assert call(implementations, "date_between", x="2021-06-01T12:00:00+02:00", min="2021-01-01",
                max="2022-01-01") is True
    assert call(implementations, "date_between", x="2022-01-01", min="2021-01-01", max="2022-01-01",
                exclude_max=True) is False
    assert call(implementations, "date_between", x="2021-06-01", min="2022-01-01", max="2021-01-01") is False
    assert call(implementations, "date_between", x=None, min="2021-01-01", max="2022-01-01") is None
    assert call(implementations, "date_difference", date1="2020-01-01T00:00:00.0Z",
                date2="2020-01-01T00:00:15.5Z") == 15.5
    assert call(implementations, "date_difference", date1="2020-01-01T00:00:00Z",
                date2="2020-01-01T01:00:00+01:00") == 0
    assert call(implementations, "date_difference", date1="2020-01-02", date2="2020-01-01") == -86400
    assert call(implementations, "date_difference", date1="2020-01-02", date2="2020-01-01", unit="day") == -1
    assert call(implementations, "date_difference", date1="2020-01-15", date2="2020-03-15", unit="month") == 2
    assert call(implementations, "date_difference", date1="2020-01-01", date2="2021-07-02",
                unit="year") == pytest.approx(1.5 + 1 / 31 / 12)


# --- data cubes: filter_labels, filter_temporal, aggregate_temporal_period ------------------------

def cube(times, dim="t", dtype="float32", values=None) -> xr.DataArray:
    times = pd.to_datetime(times, format="ISO8601")
    data = np.arange(1, len(times) + 1) if values is None else np.asarray(values)
    return xr.DataArray(data.astype(dtype).reshape(len(times), 1, 1), dims=(dim, "y", "x"),
                        coords={dim: times, "y": [0.5], "x": [0.5]})


def test_filter_labels_keeps_every_matching_label(implementations):
    bands = xr.DataArray(np.arange(4.0).reshape(4, 1), dims=("bands", "x"), coords={"bands": ["B02", "B03", "B04", "B08"]})
    condition = _child("neq", x={"from_parameter": "value"}, y="B03")
    executor = Executor(implementations, RunContext())
    graph = {"f": {"process_id": "filter_labels", "arguments": {"data": {"from_parameter": "c"},
                                                                  "condition": condition, "dimension": "bands"},
                   "result": True}}
    result = executor.run(Graph.parse(graph), {"c": bands})
    assert result["bands"].values.tolist() == ["B02", "B04", "B08"]
    # the library keeps only the first match
    from backend.processing.engine.executor import Callback

    callback = Callback(executor, Graph.parse(condition["process_graph"]), {})
    assert library_functions()["filter_labels"](bands, callback, "bands")["bands"].values.tolist() != [
        "B02", "B04", "B08"]


def test_filter_labels_passes_dates_as_strings(implementations):
    data = cube(["2020-01-01", "2020-06-01", "2021-01-01"])
    condition = _child("date_between", x={"from_parameter": "value"}, min="2020-03-01", max="2021-01-01")
    result = Executor(implementations, RunContext()).run(Graph.parse(
        {"f": {"process_id": "filter_labels", "arguments": {"data": {"from_parameter": "c"}, "condition": condition,
                                                              "dimension": "t"}, "result": True}}), {"c": data})
    assert pd.to_datetime(result["t"].values).strftime("%Y-%m-%d").tolist() == ["2020-06-01", "2021-01-01"]


def test_filter_temporal_uses_the_dimension_and_keeps_the_type(implementations):
    first = cube(["2020-01-01", "2020-02-01", "2020-03-01"], dtype="uint16")
    data = first.expand_dims(t2=pd.to_datetime(["2019-01-01", "2021-01-01"]))
    result = call(implementations, "filter_temporal", data=data, extent=["2020-06-01", None], dimension="t2")
    assert pd.to_datetime(result["t2"].values).year.tolist() == [2021]
    assert result.sizes["t"] == 3 and result.dtype == np.uint16
    result = call(implementations, "filter_temporal", data=first, extent=["2020-01-15T00:00:00+01:00", "2020-03-01"])
    assert result.sizes["t"] == 1 and result.dtype == np.uint16  # end excluded
    with pytest.raises(errors.OpenEOError, match="TemporalExtentEmpty|empty"):
        call(implementations, "filter_temporal", data=first, extent=["2020-03-01", "2020-01-01"])
    # the library filters `t` although `t2` was asked for, and returns float32
    from openeo_pg_parser_networkx.pg_schema import TemporalInterval

    wrong = library_functions()["filter_temporal"](data, TemporalInterval(["2020-06-01", None]), dimension="t2")
    assert wrong.sizes["t2"] == 2 or wrong.dtype != np.uint16


def _aggregate(implementations, data, period, dimension=None, reducer="mean"):
    graph = {"a": {"process_id": "aggregate_temporal_period", "arguments": {
        "data": {"from_parameter": "c"}, "period": period, "dimension": dimension,
        "reducer": _child(reducer, data={"from_parameter": "data"})}, "result": True}}
    return Executor(implementations, RunContext()).run(Graph.parse(graph), {"c": data})


def test_aggregate_temporal_period_dekad_on_any_dimension_name(implementations):
    data = cube(["2024-01-28", "2024-01-31", "2024-02-01", "2024-02-10", "2024-02-29"], dim="time")
    result = _aggregate(implementations, data, "dekad", dimension="time")
    assert result["time"].values.tolist() == ["2024-03", "2024-04", "2024-05", "2024-06"]
    assert np.array_equal(result.values.ravel(), [1.5, 3.5, np.nan, 5.0], equal_nan=True)  # empty dekad: no-data
    with pytest.raises(Exception):  # the library looks for a dimension `t`
        library_functions()["aggregate_temporal_period"](data, lambda *a, **k: None, "dekad", dimension="time")


@pytest.mark.parametrize(("period", "times", "labels"), [
    ("hour", ["2020-06-01T00:00:00", "2020-06-01T00:59:59", "2020-06-01T02:00:00"],
     ["2020-06-01-00", "2020-06-01-01", "2020-06-01-02"]),
    ("day", ["2020-01-01T12:00:00", "2020-01-03"], ["2020-001", "2020-002", "2020-003"]),
    ("week", ["2022-12-06", "2022-12-18T23:59:59", "2023-01-01T12:00:00"], ["2022-49", "2022-50", "2022-51", "2022-52"]),
    ("month", ["2024-01-28", "2024-04-15"], ["2024-01", "2024-02", "2024-03", "2024-04"]),
    ("season", ["2023-12-28", "2024-02-29", "2024-03-01", "2024-11-30"], ["2023-djf", "2024-mam", "2024-jja", "2024-son"]),
    ("tropical-season", ["2023-11-01", "2024-04-30", "2024-05-01", "2024-11-30"],
     ["2023-ndjfma", "2024-mjjaso", "2024-ndjfma"]),
    ("year", ["2020-01-01", "2022-12-31"], ["2020", "2021", "2022"]),
    ("decade", ["2020-01-01", "2039-12-31T23:59:59"], ["2020", "2030"]),
    ("decade-ad", ["2020-01-01", "2050-12-31"], ["2011", "2021", "2031", "2041"]),
])
def test_aggregate_temporal_period_labels(implementations, period, times, labels):
    assert _aggregate(implementations, cube(times), period)["t"].values.tolist() == labels


# --- apply_neighborhood -------------------------------------------------------------------------

def grid(n=5) -> xr.DataArray:
    return xr.DataArray(np.arange(n * n, dtype="float64").reshape(n, n), dims=("y", "x"),
                        coords={"y": np.arange(n) * -10.0, "x": np.arange(n) * 10.0})


def test_apply_neighborhood_tiles_with_overlap(implementations):
    seen = []

    def process(named_parameters):
        window = named_parameters["data"]
        seen.append(window)
        return window * 2  # same dimensions and sizes

    data = grid()
    result = call(implementations, "apply_neighborhood", data=data, process=process,
                  size=[{"dimension": "x", "value": 2, "unit": "px"}, {"dimension": "y", "value": 20, "unit": "m"}],
                  overlap=[{"dimension": "x", "value": 1, "unit": "px"}, {"dimension": "y", "value": 1, "unit": "px"}])
    xr.testing.assert_equal(result, data * 2)
    # 2 + 2 × 1 overlap in both directions, also for the last (partial) tiles: no-data beyond the borders
    assert len(seen) == 9 and {w.shape for w in seen} == {(4, 4)}
    corner = seen[0]
    assert np.isnan(corner.isel(x=0, y=0)) and corner.x.values.tolist() == [-10.0, 0.0, 10.0, 20.0]
    assert corner.isel(x=2, y=2).item() == data.isel(x=1, y=1).item()  # the overlap holds the neighbours


def test_apply_neighborhood_in_a_graph_and_errors(implementations):
    data = grid(4)
    graph = {"n": {"process_id": "apply_neighborhood", "arguments": {
        "data": {"from_parameter": "c"},
        "process": {"process_graph": {"a": {"process_id": "apply", "arguments": {
            "data": {"from_parameter": "data"},
            "process": _child("add", x={"from_parameter": "x"}, y=1)}, "result": True}}},
        "size": [{"dimension": "x", "value": 3, "unit": "px"}, {"dimension": "y", "value": None}]}, "result": True}}
    result = Executor(implementations, RunContext()).run(Graph.parse(graph), {"c": data})
    xr.testing.assert_equal(result, data + 1)
    with pytest.raises(errors.OpenEOError, match="DimensionNotAvailable|does not exist"):
        call(implementations, "apply_neighborhood", data=data, process=lambda named_parameters: None,
             size=[{"dimension": "t", "value": 2, "unit": "px"}])
    with pytest.raises(errors.OpenEOError, match="DataCubePropertiesImmutable|must return"):
        call(implementations, "apply_neighborhood", data=data,
             process=lambda named_parameters: named_parameters["data"].isel(x=[0]),
             size=[{"dimension": "x", "value": 2, "unit": "px"}])


# --- filter_spatial -----------------------------------------------------------------------------

def test_filter_spatial_crops_and_masks(implementations):
    import rioxarray  # noqa: F401  (.rio accessor)

    data = xr.DataArray(np.ones((1, 4, 4)), dims=("t", "y", "x"),
                        coords={"t": pd.to_datetime(["2020-01-01"]), "y": [48.55, 48.45, 48.35, 48.25],
                                "x": [16.05, 16.15, 16.25, 16.35]}).rio.write_crs("EPSG:4326").chunk()
    triangle = {"type": "Polygon", "coordinates": [[[16.1, 48.2], [16.3, 48.2], [16.1, 48.6], [16.1, 48.2]]]}
    for geometries in (triangle, {"type": "Feature", "properties": {}, "geometry": triangle},
                       {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                                                                    "geometry": triangle}]}):
        result = call(implementations, "filter_spatial", data=data, geometries=geometries)
        assert result["x"].values.tolist() == [16.15, 16.25]  # cropped to the bounding box
        inside = ~np.isnan(np.asarray(result.isel(t=0)))
        # pixel centres inside the triangle (its hypotenuse runs from x 16.3 at y 48.2 to x 16.1 at y 48.6)
        assert inside.tolist() == [[False, False], [True, False], [True, False], [True, True]]
    with pytest.raises(Exception):  # openeo-processes-dask fails on every lazy cube
        library_functions()["filter_spatial"](data, triangle)
