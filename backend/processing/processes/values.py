"""Shared helpers of the process fixes: JSON values (scalars, lists) versus arrays and cubes.

openeo-processes-dask writes most processes for numpy/dask arrays (what callbacks such as
reduce_dimension's reducer receive). Called with JSON values (``null``, booleans, strings, lists
holding ``null``) they raise or answer wrongly, so our overrides handle JSON values by the
openEO spec themselves and hand arrays to the library.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import numpy as np
import xarray as xr


def is_array(value: Any) -> bool:
    """numpy/dask arrays and xarray objects (callback data, cubes), not JSON values."""
    if isinstance(value, (np.ndarray, xr.DataArray, xr.Dataset)):
        return True
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, da.Array)


def plain(value: Any) -> Any:
    """numpy scalars (np.float64, np.bool_, ...) as the Python values they hold."""
    return value.item() if isinstance(value, np.generic) else value


def is_number(value: Any) -> bool:
    """An openEO number: int or float, but not a boolean (Python's bool is an int)."""
    value = plain(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def json_list(value: Any) -> list:
    """A list as plain Python values (numpy scalars unwrapped)."""
    return [plain(item) for item in value]


def where(condition: Any, x: Any, y: Any) -> Any:
    """np.where that keeps xarray objects (np.where on a DataArray returns a bare numpy array)."""
    if any(isinstance(v, xr.DataArray) for v in (condition, x, y)):
        return xr.where(condition, x, y)
    return np.where(condition, x, y)


def no_wrap(value: Any) -> Any:
    """Integer arrays as float64, so band math cannot wrap around (uint16 1 - 2 = 65535)."""
    if is_array(value) and getattr(value, "dtype", None) is not None and value.dtype.kind in "ui":
        return value.astype("float64")
    return value


def null_in_null_out(function: Callable, *names: str) -> Callable:
    """Wrap ``function`` so that it returns null when any of the parameters ``names`` is null.

    The wrapper keeps the wrapped signature (``inspect.signature`` follows ``__wrapped__``), so the
    evaluator still forwards callback keywords such as ``axis`` the function accepts.
    """
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind_partial(*args, **kwargs).arguments
        if any(name in bound and plain(bound[name]) is None for name in names):
            return None
        return function(*args, **kwargs)

    return wrapper
