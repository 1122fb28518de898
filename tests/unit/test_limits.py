"""Synchronous limits: cube size refused before reading, computations stopped at the deadline."""

from __future__ import annotations

import time

import dask
import dask.array as da
import pytest
import xarray as xr

from apicore import errors
from backend.processing.compute import ComputeScope, computing
from backend.processing.limits import Deadline, check_cube_size


def test_cube_size_limit_names_the_sizes():
    cube = xr.DataArray(da.zeros((3, 2, 100, 100), chunks=50), dims=("t", "bands", "y", "x"))
    check_cube_size(cube, 60_000, "load_collection")
    with pytest.raises(errors.ProcessGraphComplexity, match="60,000 values.*batch job") as info:
        check_cube_size(cube, 59_999, "load_collection")
    assert info.value.status == 400


def test_deadline_stops_a_running_computation():
    def slow(block):
        time.sleep(0.05)
        return block

    array = da.ones((200, 10), chunks=(1, 10)).map_blocks(slow)  # 200 tasks × 50 ms = 10 s
    start = time.monotonic()
    with computing(ComputeScope(threads=2, deadline=Deadline(0.3))):
        with pytest.raises(errors.ProcessGraphComplexity, match="0.3 s"):
            array.sum().compute()
    assert time.monotonic() - start < 2.0


def test_a_computation_whose_tasks_all_started_in_time_still_ends_at_the_deadline():
    """One task, started at once, ending after the deadline: no task starts later, so only the check at a
    task's end can stop it (without it the answer came, 0.3 s after the limit)."""
    def slow(value):
        time.sleep(0.6)
        return value

    with computing(ComputeScope(threads=2, deadline=Deadline(0.3))):
        with pytest.raises(errors.ProcessGraphComplexity, match="0.3 s"):
            dask.delayed(slow)(1).compute()
