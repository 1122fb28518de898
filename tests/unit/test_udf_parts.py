"""The UDF parts that need no sandbox: chunk codec, runtime checks, refusing to start without root."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from apicore import errors
from backend.processing.udf import sandbox
from backend.processing.udf.chunk_codec import decode_chunk, encode_chunk
from backend.processing.udf.runtimes import check_runtime, python_version


def test_chunk_codec_keeps_values_and_labels(tmp_path):
    cube = xr.DataArray(np.arange(24, dtype="float32").reshape(2, 2, 2, 3), dims=("t", "bands", "y", "x"),
                        coords={"t": np.array(["2022-06-02T10:00", "2022-06-07"], dtype="datetime64[ns]"),
                                "bands": ["B04", "B08"], "y": [5.0, 4.0], "x": [1.0, 2.0, 3.0]}, name="s2")
    encode_chunk(cube, str(tmp_path), "input")
    assert np.load(tmp_path / "input.npy", allow_pickle=False).dtype == np.float32  # plain .npy, no pickle
    back = decode_chunk(str(tmp_path), "input")
    xr.testing.assert_identical(back, cube)


def test_chunk_codec_refuses_non_numeric_values(tmp_path):
    with pytest.raises(TypeError, match="numbers"):
        encode_chunk(xr.DataArray(np.array(["a", "b"], dtype=object), dims=("x",)), str(tmp_path), "input")


def test_runtime_and_version_checks():
    check_runtime("Python", None)
    check_runtime("python", python_version())
    check_runtime("Python", "3")
    with pytest.raises(errors.OpenEOError) as caught:
        check_runtime("R", None)
    assert caught.value.code == "InvalidRuntime" and caught.value.status == 400
    with pytest.raises(errors.OpenEOError) as caught:
        check_runtime("Python", "2.7")
    assert caught.value.code == "InvalidVersion" and python_version() in caught.value.message


def test_without_root_udfs_are_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sandbox, "_client", None)
    with pytest.raises(errors.OpenEOError) as caught:
        sandbox.fork_server()
    assert caught.value.code == "UdfFailed" and "needs the server to run as root" in caught.value.message
