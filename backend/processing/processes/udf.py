"""run_udf: Python UDFs on chunks of a cube, each in the sandbox (backend/processing/udf/).

The openEO way to call a UDF is a callback whose only process is ``run_udf`` on the callback's data
(what the Python client's ``cube.apply(openeo.UDF(...))``, ``reduce_dimension(reducer=UDF)`` and
``apply_dimension(process=UDF)`` send). Run per pixel that would lose every label and cost a process
per value, so, like other backends, ``apply``, ``apply_dimension`` and ``reduce_dimension`` recognise
such a callback and hand the UDF whole chunks instead: an ``XarrayDataCube`` with dimensions
(t, bands, y, x) as present, all labels of t and bands, a spatial window of at most ``CHUNK_PIXELS``.
The UDF must return the same dimensions and shape (``reduce_dimension``: without the reduced
dimension, or with it of length one); x/y labels and the other coordinates are kept from the input.
``run_udf`` on a whole cube (a top-level node) works like ``apply``. ``udf`` is the code itself (a
multi-line string) or the path of a file in the caller's workspace (/files).

The chunks are computed lazily (``xarray.map_blocks``), so Dask schedules them like any other task.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

from apicore import errors
from backend.processing.engine.executor import Callback
from backend.processing.processes.udf_vector import run_on_vector_cube
from backend.processing.udf.runtimes import check_runtime
from backend.processing.udf.sandbox import UdfLimits, run_udf_chunk
from backend.processing.writers.common import geometry_dim

UDF_ORDER = ("t", "bands", "y", "x")  # the openeo package's order for UDF cubes (execute_local_udf)
SPATIAL = ("x", "y")
CHUNK_PIXELS = 1024  # per spatial side of one chunk


@dataclass(frozen=True)
class UdfCall:
    code: str
    context: Any
    limits: UdfLimits
    # The chunks of one call share a sandboxed process (one user, one code): chosen here, never by users.
    session: str = field(default_factory=lambda: uuid.uuid4().hex)


def limits_of(run_context: Any) -> UdfLimits:
    from backend.settings import Settings

    services = getattr(run_context, "services", None)
    settings = services.settings if services is not None else Settings.model_construct()
    memory_mb = getattr(settings, "udf_memory_mb", 1024)
    return UdfLimits(memory=int(memory_mb) * 2**20, cpu=float(getattr(settings, "udf_cpu_seconds", 60)),
                     timeout=float(getattr(settings, "udf_timeout", 120)),
                     spool_mb=int(getattr(settings, "udf_spool_mb", 2048)))


MAX_CODE_BYTES = 1024 * 1024  # a UDF file in the workspace


def checked_call(udf: Any, runtime: Any, version: Any, context: Any, run_context: Any) -> UdfCall:
    check_runtime(runtime, version)
    if not isinstance(udf, str) or re.match(r"^[a-z][a-z0-9+.-]*://", udf, re.IGNORECASE):
        raise errors.ProcessParameterInvalid(
            process="run_udf", parameter="udf",
            reason="give the UDF's Python source code inline (a multi-line string) or the path of a file in your "
                   "workspace (/files); URLs are not supported by this backend")
    code = udf if "\n" in udf else workspace_code(udf, run_context)
    return UdfCall(code=code, context=context if context is not None else {}, limits=limits_of(run_context))


def workspace_code(path: str, run_context: Any) -> str:
    """The code of a UDF file in the caller's own workspace (never another user's)."""
    services, user_id = getattr(run_context, "services", None), getattr(run_context, "user_id", None)
    files = getattr(services, "files", None)
    if files is None or user_id is None:
        raise errors.FileNotFound(f"File '{path}' does not exist: only an authenticated user's graph can read "
                                  "their workspace.")
    local = files.file(user_id, path)  # FileNotFound, FilePathInvalid, folders refused
    if local.stat().st_size > MAX_CODE_BYTES:
        raise errors.ProcessParameterInvalid(process="run_udf", parameter="udf",
                                             reason=f"'{path}' is larger than {MAX_CODE_BYTES:,} bytes")
    try:
        return local.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise errors.ProcessParameterInvalid(process="run_udf", parameter="udf",
                                             reason=f"'{path}' is not UTF-8 text (Python source)") from None


def udf_of_callback(process: Any, data_parameter: str, context: Any, run_context: Any) -> UdfCall | None:
    """The UDF when ``process`` is a callback made of one run_udf on its ``data_parameter``, else None."""
    if not isinstance(process, Callback) or len(process.graph.nodes) != 1:
        return None
    node = process.graph.nodes[process.graph.result]
    arguments = node.get("arguments", {})
    if node.get("process_id") != "run_udf" or arguments.get("data") != {"from_parameter": data_parameter}:
        return None
    resolved = {name: process.resolve(value, context=context) for name, value in arguments.items() if name != "data"}
    return checked_call(resolved.get("udf"), resolved.get("runtime"), resolved.get("version"),
                        resolved.get("context", {}), run_context)


def run_on_chunks(data: xr.DataArray, call: UdfCall, drop: str | None = None) -> xr.DataArray:
    """The UDF over ``data`` chunk by chunk; ``drop``: the dimension the UDF reduces."""
    if not isinstance(data, xr.DataArray):
        raise errors.ProcessParameterInvalid(process="run_udf", parameter="data",
                                             reason="this backend runs UDFs on raster data cubes only")
    dtype = data.dtype if data.dtype.kind == "f" else np.dtype("float64")
    if data.chunks is None:
        return _run_block(data, call, drop, dtype)
    data = data.chunk({dim: (min(CHUNK_PIXELS, data.sizes[dim]) if dim in SPATIAL else -1) for dim in data.dims})
    template = data if drop is None else data.isel({drop: 0}, drop=True)
    template = template.astype(dtype)
    return xr.map_blocks(_run_block, data, args=(call, drop, dtype), template=template)


def _run_block(block: xr.DataArray, call: UdfCall, drop: str | None, dtype: np.dtype) -> xr.DataArray:
    order = [dim for dim in UDF_ORDER if dim in block.dims] + [dim for dim in block.dims if dim not in UDF_ORDER]
    bare = xr.DataArray(block.transpose(*order).values, dims=order,
                        coords={dim: block.coords[dim].values for dim in order if dim in block.coords},
                        name=block.name)
    result = run_udf_chunk(call.code, call.context, bare, call.limits, call.session)
    expected = [dim for dim in block.dims if dim != drop]
    if drop is not None and drop in result.dims and result.sizes[drop] == 1:
        result = result.isel({drop: 0}, drop=True)
    shape = {dim: block.sizes[dim] for dim in expected}
    if set(result.dims) != set(expected) or any(result.sizes[dim] != size for dim, size in shape.items()):
        got = ", ".join(f"{dim}: {size}" for dim, size in result.sizes.items())
        want = ", ".join(f"{dim}: {size}" for dim, size in shape.items())
        raise errors.UdfFailed(f"The UDF returned a cube of ({got}) for a chunk; this process needs ({want}): "
                               "the same dimensions and sizes as its input" +
                               (f" without '{drop}'." if drop else "."))
    values = result.transpose(*expected).values.astype(dtype, copy=False)
    coords = {name: coord for name, coord in block.coords.items() if drop is None or drop not in coord.dims}
    return xr.DataArray(values, dims=expected, coords=coords, attrs=dict(block.attrs), name=block.name)


def with_udf(process_id: str, implementation: Callable, callback_parameter: str, data_parameter: str,
             reduces: bool, coerce: Callable[[dict], dict] | None = None) -> Callable:
    """``implementation`` that hands a run_udf callback whole chunks; any other callback goes on as before
    (``coerce``: the argument conversion the implementation had without this wrapper)."""

    def run(data: Any, run_context: Any = None, **kwargs: Any) -> Any:
        call = udf_of_callback(kwargs.get(callback_parameter), data_parameter, kwargs.get("context"), run_context)
        if call is None:
            arguments = {"data": data, **kwargs}
            return implementation(**(coerce(arguments) if coerce is not None else arguments))
        if process_id == "aggregate_temporal":
            return aggregate_temporal_udf(data, call, kwargs.get("intervals"), kwargs.get("labels"),
                                          kwargs.get("dimension"))
        dimension = kwargs.get("dimension")
        if dimension is not None and dimension not in getattr(data, "dims", ()):
            raise errors.DimensionNotAvailable(f"{process_id}: the cube has no dimension '{dimension}' "
                                               f"(dimensions: {list(getattr(data, 'dims', []))})")
        if process_id == "apply_dimension" and kwargs.get("target_dimension") not in (None, dimension):
            raise errors.ProcessParameterInvalid(process=process_id, parameter="target_dimension",
                                                 reason="with a UDF this backend keeps the dimension: leave it unset")
        return run_on_chunks(data, call, drop=dimension if reduces else None)

    run.__name__ = process_id
    return run


def aggregate_temporal_udf(data: Any, call: UdfCall, intervals: Any, labels: Any, dimension: str | None) -> Any:
    """aggregate_temporal with a UDF reducer: each interval's dates reduced by the UDF (chunk by chunk, as
    reduce_dimension does); labels: the given ones, else each interval's start; an interval without dates
    is all NaN."""
    dimension = dimension or "t"
    if not isinstance(data, xr.DataArray) or dimension not in data.dims:
        raise errors.DimensionNotAvailable(f"aggregate_temporal: the cube has no temporal dimension '{dimension}' "
                                           f"(dimensions: {list(getattr(data, 'dims', []))})")
    if not isinstance(intervals, list) or not intervals or not all(
            isinstance(i, (list, tuple)) and len(i) == 2 for i in intervals):
        raise errors.ProcessParameterInvalid(process="aggregate_temporal", parameter="intervals",
                                             reason="give a list of [start, end] pairs")
    if labels and len(labels) != len(intervals):
        raise errors.ProcessParameterInvalid(process="aggregate_temporal", parameter="labels",
                                             reason=f"{len(labels)} labels for {len(intervals)} intervals")
    times = pd.DatetimeIndex(data[dimension].values)
    reduced = []
    for start, end in intervals:
        inside = np.ones(len(times), dtype=bool)
        if start is not None:
            inside &= times >= pd.Timestamp(start).tz_localize(None)
        if end is not None:
            inside &= times < pd.Timestamp(end).tz_localize(None)
        if inside.any():
            reduced.append(run_on_chunks(data.isel({dimension: np.flatnonzero(inside)}), call, drop=dimension))
        else:
            reduced.append(xr.full_like(data.isel({dimension: 0}, drop=True), np.nan, dtype="float64"))
    names = list(labels) if labels else [start for start, _ in intervals]
    try:
        index = pd.DatetimeIndex([pd.Timestamp(n).tz_localize(None) for n in names], name=dimension)
    except (ValueError, TypeError):
        index = pd.Index([str(n) for n in names], name=dimension)
    return xr.concat(reduced, dim=index, coords="minimal", compat="override").transpose(*data.dims)


def run_udf(data: Any, udf: str, runtime: str, version: str | None = None, context: Any = None,
            run_context: Any = None) -> Any:
    """run_udf as a node of its own: on a whole raster cube (as apply does) or a vector cube
    (udf_vector.py). Inside other callbacks
    (where it would get bare arrays without labels) it is refused with what to do instead."""
    call = checked_call(udf, runtime, version, context, run_context)
    if isinstance(data, xr.DataArray) and (dim := geometry_dim(data)) is not None:
        return run_on_vector_cube(data, dim, call)
    if isinstance(data, xr.DataArray):
        return run_on_chunks(data, call)
    raise errors.ProcessParameterInvalid(
        process="run_udf", parameter="data",
        reason="this backend runs a UDF on a raster or vector cube, or as the only process of the callback of apply, "
               "apply_dimension or reduce_dimension (with the callback's data as `data`)")
