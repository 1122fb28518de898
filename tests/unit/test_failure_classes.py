"""engine/failures.py: what a process raises → whose fault (openEO code and status)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from apicore import errors
from backend.processing.engine.executor import RunContext
from backend.processing.engine.failures import process_failure
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def cube() -> xr.DataArray:
    return xr.DataArray(np.zeros((2, 3, 3), dtype="float32"), dims=("bands", "y", "x"),
                        coords={"bands": ["B04", "B08"], "y": [2.5, 1.5, 0.5], "x": [0.5, 1.5, 2.5]})


@pytest.mark.parametrize("process_id, arguments, code, fragment", [
    # plain Exception("LabelMismatch - ...") / ("DimensionExists - ...") of openeo-processes-dask: the code kept
    ("rename_labels", lambda c: {"data": c, "dimension": "bands", "target": ["a"], "source": ["B04", "B08"]},
     "LabelMismatch", "don't match"),
    ("add_dimension", lambda c: {"data": c, "name": "bands", "label": "x"}, "DimensionExists", "already exists"),
    # its OpenEOException subclasses
    ("merge_cubes", lambda c: {"cube1": c, "cube2": c.rename(bands="b")}, "OverlapResolverMissing",
     "no overlap resolver"),
])
def test_the_librarys_user_errors_are_400_with_their_code(implementations, process_id, arguments, code, fragment):
    with pytest.raises(errors.OpenEOError) as failure:
        implementations.call(process_id, arguments(cube()), {}, RunContext(), "n")
    assert (failure.value.status, failure.value.code) == (400, code)
    assert f"Process '{process_id}' (node 'n')" in failure.value.message and fragment in failure.value.message


def test_a_plain_exception_of_the_library_that_says_what_to_change_is_400():
    from openeo_processes_dask.process_implementations.cubes._filter import filter_bands

    try:  # the library's own filter_bands (ours resolves common names first)
        filter_bands(cube(), bands=["B99"])
    except Exception as raised:  # noqa: BLE001
        error = process_failure("filter_bands", "n", raised)
    assert (error.status, error.code) == (400, "ProcessParameterInvalid") and "choose among" in error.message


@pytest.mark.parametrize("exc", [ValueError("x"), KeyError("x"), TypeError("x"), IndexError("x"), Exception("Oops")])
def test_anything_else_is_internal(exc):
    try:
        raise exc  # raised here, not in openeo-processes-dask
    except Exception as raised:  # noqa: BLE001
        error = process_failure("p", "n", raised)
    assert (error.status, error.code) == (500, "Internal")
    assert "Process 'p' (node 'n') failed unexpectedly" in error.message and type(exc).__name__ in error.message


def test_overflow_and_memory_are_the_users():
    assert process_failure("p", "n", OverflowError("x")).code == "ProcessParameterInvalid"
    error = process_failure("array_create", "n", MemoryError("Unable to allocate 7.28 TiB"))
    assert (error.status, error.code) == (400, "ProcessGraphComplexity") and "7.28 TiB" in error.message
