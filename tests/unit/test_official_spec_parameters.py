"""What the current official process specs changed, against our implementations and argument checks.

The specs served moved from openeo-processes-dask's 1.2-era texts to the pinned official copy
(backend/process_specs/openeo-processes): new parameters with defaults must be accepted (or refused
with a clear error), changed defaults followed, new schema keywords checked on literal arguments.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (.rio accessor)
import xarray as xr

from apicore import errors
from backend.processing.engine.executor import RunContext
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations
from backend.processing.validation import validate_process


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def call(implementations, process_id, **arguments):
    return implementations.call(process_id, arguments, {}, RunContext(), "node")


def validation_errors(implementations, process_id, **arguments) -> list[tuple[str, str]]:
    graph = {"n": {"process_id": process_id, "arguments": arguments, "result": True}}
    context = RunContext(services=SimpleNamespace(implementations=implementations, collections=None),
                         api_root="http://backend/openeo/1.2")
    return [(e["code"], e["message"]) for e in validate_process({"process_graph": graph}, context)]


def utm_grid(n: int = 6) -> xr.DataArray:
    """n × n pixels of 10 m in UTM (x, y in metres) over two dates."""
    data = np.arange(2 * n * n, dtype="float64").reshape(2, n, n)
    return xr.DataArray(data, dims=("t", "y", "x"), coords={
        "t": pd.to_datetime(["2022-06-01", "2022-06-11"]),
        "y": 5151000.0 - 10 * np.arange(n), "x": 680000.0 + 10 * np.arange(n)}).rio.write_crs("EPSG:32632")


def tile_shapes(implementations, **arguments) -> set[tuple]:
    seen = []

    def process(named_parameters):
        seen.append(named_parameters["data"].shape)
        return named_parameters["data"]

    data = utm_grid()
    result = call(implementations, "apply_neighborhood", data=data, process=process, **arguments)
    xr.testing.assert_equal(result, data)
    return set(seen)


def test_apply_neighborhood_without_unit_uses_the_reference_systems_unit(implementations):
    """The official spec's `unit` defaults to null: "the default unit of the reference system" (metres in
    UTM). Our former spec said pixels."""
    in_metres = [{"dimension": "x", "value": 20, "unit": "m"}, {"dimension": "y", "value": 30, "unit": "m"}]
    unit_omitted = [{"dimension": "x", "value": 20}, {"dimension": "y", "value": 30}]
    unit_null = [{"dimension": "x", "value": 20, "unit": None}, {"dimension": "y", "value": 30, "unit": None}]
    expected = {(2, 3, 2)}  # t, 30 m = 3 px, 20 m = 2 px
    assert tile_shapes(implementations, size=in_metres) == expected
    assert tile_shapes(implementations, size=unit_omitted) == expected
    assert tile_shapes(implementations, size=unit_null) == expected
    pixels = [{"dimension": "x", "value": 2, "unit": "px"}, {"dimension": "y", "value": 3, "unit": "px"}]
    assert tile_shapes(implementations, size=pixels) == expected
    # dates have no numeric unit: a number counts labels there
    assert tile_shapes(implementations, size=[{"dimension": "t", "value": 1}]) == {(1, 6, 6)}


def test_apply_neighborhood_schema_accepts_a_null_unit(implementations):
    size = [{"dimension": "x", "value": 20, "unit": None}]
    assert validation_errors(implementations, "apply_neighborhood", data={"from_parameter": "c"},
                             process={"process_graph": {"r": {"process_id": "absolute", "arguments": {
                                 "x": {"from_parameter": "data"}}, "result": True}}}, size=size) == []


def test_resample_spatial_accepts_the_default_align_and_refuses_others(implementations):
    data = utm_grid().isel(t=0, drop=True)
    for arguments in ({"align": "upper-left"}, {}):  # what the Python client sends; the spec's default
        result = call(implementations, "resample_spatial", data=data, resolution=20, **arguments)
        assert float(result.x[1] - result.x[0]) == 20 and float(result.y[0] - result.y[1]) == 20
    with pytest.raises(errors.ProcessParameterInvalid, match="align.*upper-left"):
        call(implementations, "resample_spatial", data=data, resolution=20, align="lower-left")


def test_filter_bands_wavelengths_is_not_offered(implementations):
    assert [p["name"] for p in implementations.spec("filter_bands")["parameters"]] == ["data", "bands"]
    with pytest.raises(errors.ProcessParameterUnsupported, match="wavelengths"):
        call(implementations, "filter_bands", data={"from_parameter": "c"}, wavelengths=[[0.6, 0.7]])
    assert [code for code, _ in validation_errors(implementations, "filter_bands", data={"from_parameter": "c"},
                                                  wavelengths=[[0.6, 0.7]])] == ["ProcessParameterUnsupported"]


def test_new_schema_keywords_check_literal_arguments(implementations):
    found = validation_errors(implementations, "rename_labels", data={"from_parameter": "c"}, dimension="bands",
                              target=["a", "a"], source=["B04", "B08"])
    assert [code for code, _ in found] == ["ProcessParameterInvalid"] and "non-unique" in found[0][1]
    found = validation_errors(implementations, "arccos", x=2)
    assert [code for code, _ in found] == ["ProcessParameterInvalid"] and "maximum of 1" in found[0][1]
    assert validation_errors(implementations, "arccos", x=0.5) == []
    # openEO's own `minimumExclusive` is not a JSON Schema keyword: not asserted
    assert validation_errors(implementations, "eq", x=1, y=1, delta=0) == []


def test_new_enum_values_work(implementations):
    assert call(implementations, "date_difference", date1="2020-01-01", date2="2020-01-15", unit="week") == 2
    labeled = call(implementations, "array_append", data=[1, 2], value=3, label=None)
    assert list(labeled) == [1, 2, 3]
