"""order and sort on numpy/dask arrays along an axis (callbacks of apply_dimension, reduce_dimension).

openeo-processes-dask's ``order`` refuses the default ``nodata=null`` for arrays of more than one
dimension ("would result in sparse multi-dimensional arrays"), which is every callback of
apply_dimension; for ``asc=false`` it flips the permutation over *all* axes (wrong rows for 2-D data) and,
in 1-D, puts no-data first although ``nodata=true`` asks for it last; ``nodata=false`` indexes N-D data
with an N-D permutation. ``sort`` with ``nodata=null`` flattens N-D data to one dimension.

Here the ranking runs along ``axis`` (the callback's dimension; the last axis if not given), stable, with
no-data (NaN, NaT) placed as asked. ``nodata=null`` removes no-data: a 1-D numpy array gets shorter; otherwise every
row keeps its length and ends with no-data (null) instead of the removed positions, as rows of different
lengths cannot form a cube. Dask arrays stay lazy (one chunk along the axis). JSON lists keep the list
fixes of arrays.py.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import xarray as xr
from openeo_processes_dask.process_implementations import arrays as lib

from backend.processing.processes import arrays as list_fixes
from backend.processing.processes.values import is_list


def _keys(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(float sort keys, no-data mask) for numeric/boolean/datetime data; None for anything else."""
    if values.dtype.kind == "M":
        missing = np.isnat(values)
        return values.view("i8").astype("float64"), missing
    if values.dtype.kind in "biuf":
        keys = values.astype("float64")
        return keys, np.isnan(keys)
    return None


def _rank_rows(values: np.ndarray, asc: bool, nodata: bool | None) -> np.ndarray:
    """The permutation of every row (last axis); no-data positions of ``nodata=None`` as NaN (float)."""
    keys, missing = _keys(values)
    keys = np.where(missing, np.nan, keys if asc else -keys)
    permutation = np.argsort(keys, axis=-1, kind="stable")  # NaN last, ties in original order
    count = values.shape[-1]
    n_missing = missing.sum(axis=-1, keepdims=True)
    if nodata is True or not missing.any():
        return permutation
    positions = np.arange(count)
    if nodata is False:  # rotate the trailing no-data positions to the front of each row
        return np.take_along_axis(permutation, (positions - n_missing) % count, axis=-1)
    return np.where(positions >= count - n_missing, np.nan, permutation)


def _along_axis(function: Callable[[np.ndarray], np.ndarray], data: Any, axis: int, dtype: Any) -> Any:
    """``function`` (last-axis rows → same shape) applied along ``axis`` of a numpy or dask array."""
    moved = np.moveaxis(data, axis, -1)
    if isinstance(moved, np.ndarray):
        return np.moveaxis(function(moved), -1, axis)
    moved = moved.rechunk({moved.ndim - 1: -1})
    return np.moveaxis(moved.map_blocks(function, dtype=dtype), -1, axis)


def _array_and_axis(data: Any, axis: int | None) -> tuple[Any, int]:
    if isinstance(data, xr.DataArray):
        data = data.data
    data = data if hasattr(data, "ndim") else np.asarray(data)
    return data, (data.ndim - 1 if axis is None else axis % max(data.ndim, 1))


def _ranked(data: Any, asc: bool, nodata: bool | None, axis: int | None, sort_values: bool) -> Any:
    """The permutation (or the sorted values) along ``axis``; None for data that is not numeric/temporal."""
    values, axis = _array_and_axis(data, axis)
    if values.dtype.kind not in "biufM":
        return None
    if values.ndim == 0 or values.shape[axis] == 0:
        return values
    if values.ndim == 1 and nodata is None and isinstance(values, np.ndarray):  # 1-D: no-data really removed
        permutation = _rank_rows(values, asc, None)
        if permutation.dtype.kind == "f":
            permutation = permutation[~np.isnan(permutation)].astype("int64")
        return values[permutation] if sort_values else permutation
    padded = nodata is None and values.dtype.kind in "fM"  # rows may end with no-data
    dtype = values.dtype if sort_values else np.dtype("float64" if padded else "int64")

    def rows(block: np.ndarray) -> np.ndarray:
        permutation = _rank_rows(block, asc, nodata)
        if not sort_values:
            return permutation.astype(dtype)
        gaps = np.isnan(permutation) if permutation.dtype.kind == "f" else None
        if gaps is None:
            return np.take_along_axis(block, permutation, axis=-1)
        taken = np.take_along_axis(block, np.where(gaps, 0, permutation).astype("int64"), axis=-1)
        return np.where(gaps, np.datetime64("NaT") if block.dtype.kind == "M" else np.nan, taken).astype(dtype)

    return _along_axis(rows, values, axis, dtype)


def order(data: Any, asc: bool = True, nodata: bool | None = None, axis: int | None = None) -> Any:
    if is_list(data):
        return list_fixes.order(data, asc=asc, nodata=nodata)
    ranked = _ranked(data, asc, nodata, axis, sort_values=False)
    return lib.order(data, asc=asc, nodata=nodata, axis=axis) if ranked is None else ranked


def sort(data: Any, asc: bool = True, nodata: bool | None = None, axis: int | None = None) -> Any:
    if is_list(data):
        return list_fixes.sort(data, asc=asc, nodata=nodata)
    ranked = _ranked(data, asc, nodata, axis, sort_values=True)
    return lib.sort(data, asc=asc, nodata=nodata, axis=axis) if ranked is None else ranked
