"""The sandbox's processes per session: the chunks of one run_udf call share a process (its speed),
another call, request or user never does; a failed chunk's process is not used again."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from apicore import errors
from backend.processing.udf.sandbox import UdfLimits, run_udf_chunk

LIMITS = UdfLimits(memory=256 * 2**20, cpu=3, timeout=6, spool_mb=64)
# The uid the chunk ran as, and how many chunks its process ran (state kept on a module that survives
# between the chunks of one process; the UDF's own module is new for every chunk).
WHO_AM_I = """
import os, sys
from openeo.udf import XarrayDataCube

def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
    if context.get("fail"):
        raise ValueError("failing on purpose")
    sys.chunks_seen = getattr(sys, "chunks_seen", 0) + 1
    array = cube.get_array()
    values = array.values.copy()
    values[:, 0], values[:, 1] = os.getuid(), sys.chunks_seen
    return XarrayDataCube(array.copy(data=values))
"""


@pytest.fixture
def chunk() -> xr.DataArray:
    return xr.DataArray(np.zeros((1, 2, 3, 3), dtype="float64"), dims=("t", "bands", "y", "x"),
                        coords={"t": np.array(["2022-06-01"], dtype="datetime64[ns]"), "bands": ["uid", "seen"],
                                "y": [2.0, 1.0, 0.0], "x": [0.0, 1.0, 2.0]})


def _run(chunk: xr.DataArray, session: str, fail: bool = False) -> tuple[int, int]:
    values = run_udf_chunk(WHO_AM_I, {"fail": fail}, chunk, LIMITS, session).values
    assert (values[:, 0] == values[0, 0, 0, 0]).all() and (values[:, 1] == values[0, 1, 0, 0]).all()
    return int(values[0, 0, 0, 0]), int(values[0, 1, 0, 0])


def test_chunks_of_one_session_share_a_process_and_no_other_session_does(chunk):
    first = [_run(chunk, "session-a") for _ in range(3)]
    assert [seen for _, seen in first] == [1, 2, 3]  # one process ran all three, one after the other
    assert len({uid for uid, _ in first}) == 1 and first[0][0] >= 1_000_000  # never root, never the server
    other_uid, other_seen = _run(chunk, "session-b")
    assert other_seen == 1 and other_uid != first[0][0]  # a process of its own, nothing of session a


def test_a_failed_chunk_ends_its_process(chunk):
    uid, _ = _run(chunk, "session-c")
    with pytest.raises(errors.UdfFailed, match="failing on purpose"):
        _run(chunk, "session-c", fail=True)
    next_uid, seen = _run(chunk, "session-c")
    assert seen == 1 and next_uid != uid  # a fresh process: nothing left from the failed one


def test_without_a_session_every_chunk_has_a_process_of_its_own(chunk):
    runs = [run_udf_chunk(WHO_AM_I, {}, chunk, LIMITS).values[0, :, 0, 0] for _ in range(2)]
    assert [int(seen) for _, seen in runs] == [1, 1] and runs[0][0] != runs[1][0]
