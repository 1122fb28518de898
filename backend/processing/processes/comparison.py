"""Comparison processes: eq, neq, gt, gte, lt, lte, between, is_nan, is_valid, is_nodata.

openeo-processes-dask answers JSON values wrongly: `eq(1, 1)` is `1.0` (a float, not `true`),
`gt(true, 0)` is `1.0` (booleans are no numbers in openEO: `false`), `gt("b", "a")` compares strings
(`false` by the spec), `gt(1, null)` raises instead of `null`, `eq(1, null)` is `false` instead of
`null`, `between` of a string raises. On arrays its `gte` computes ``(x - y) >= 0``, which wraps
around for unsigned integers (uint16 ``1 >= 2`` is true). Here JSON values follow the spec and arrays
keep the library's layout (float64 with NaN where an operand is null), compared without subtraction.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable

import numpy as np
from openeo_processes_dask.process_implementations import comparison as lib
from openeo_processes_dask.process_implementations.cubes.utils import isnull, notnull

from backend.processing.processes.values import is_array, is_number, plain, where


# --- eq / neq ---------------------------------------------------------------------------------

def eq(x: Any, y: Any, delta: float | None = None, case_sensitive: bool = True) -> Any:
    if is_array(x) or is_array(y):
        return lib.eq(x, y, delta=delta, case_sensitive=case_sensitive)
    return equal_values(plain(x), plain(y), delta, case_sensitive)


def neq(x: Any, y: Any, delta: float | None = None, case_sensitive: bool = True) -> Any:
    if is_array(x) or is_array(y):
        return lib.neq(x, y, delta=delta, case_sensitive=case_sensitive)
    equal = equal_values(plain(x), plain(y), delta, case_sensitive)
    return None if equal is None else not equal


def equal_values(x: Any, y: Any, delta: float | None = None, case_sensitive: bool = True) -> bool | None:
    """openEO eq for two JSON values: null if either is null, strict types (1 ≠ "1", 0 ≠ false)."""
    if x is None or y is None:
        return None
    if is_number(x) and is_number(y):
        if x == y:
            return True
        return delta is not None and bool(abs(x - y) <= delta)
    if isinstance(x, bool) and isinstance(y, bool):
        return x == y
    if isinstance(x, str) and isinstance(y, str):
        return x == y if case_sensitive else x.lower() == y.lower()
    return False  # different types, arrays, objects


# --- gt / gte / lt / lte ----------------------------------------------------------------------

def _ordering(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def compare(x: Any, y: Any) -> Any:
        if is_array(x) or is_array(y):
            # op directly (no x - y); null (NaN) where an operand is null, as the library does
            return where(notnull(x) & notnull(y), op(x, y), np.nan)
        x, y = plain(x), plain(y)
        if x is None or y is None:
            return None
        if is_number(x) and is_number(y):
            return bool(op(x, y))
        return False  # only numbers are ordered (strings, also temporal strings, and booleans are not)

    return compare


_gt, _gte, _lt, _lte = (_ordering(op) for op in (operator.gt, operator.ge, operator.lt, operator.le))


def gt(x: Any, y: Any) -> Any:
    return _gt(x, y)


def gte(x: Any, y: Any) -> Any:
    return _gte(x, y)


def lt(x: Any, y: Any) -> Any:
    return _lt(x, y)


def lte(x: Any, y: Any) -> Any:
    return _lte(x, y)


def between(x: Any, min: float, max: float, exclude_max: bool = False) -> Any:
    min, max = plain(min), plain(max)
    if min is None or max is None:
        return None
    if is_array(x):
        upper = operator.lt if exclude_max else operator.le
        inside = operator.ge(x, min) & upper(x, max) & (min <= max)  # swapped bounds: always false
        return where(notnull(x), inside, np.nan)
    x = plain(x)
    if x is None:
        return None
    if not is_number(x) or min > max:
        return False
    return bool(min <= x < max) if exclude_max else bool(min <= x <= max)


# --- is_nan / is_valid / is_nodata -------------------------------------------------------------

def is_nan(x: Any) -> Any:
    """true for everything that is not a number (null, booleans, strings, arrays) and for NaN."""
    if is_array(x):
        if x.dtype.kind in "fciu":
            return np.isnan(x)
        return isnull(x) | True  # booleans, strings, objects: not numbers
    x = plain(x)
    if not is_number(x):
        return True
    return isinstance(x, float) and math.isnan(x)


def is_valid(x: Any) -> Any:
    """false for null, NaN and ±infinity; true for any other value (also arrays, even of nulls)."""
    if is_array(x):
        return lib.is_valid(x)
    x = plain(x)
    if x is None:
        return False
    if isinstance(x, float):
        return math.isfinite(x)
    return True


def is_nodata(x: Any) -> Any:
    """null → true; for arrays element-wise (the library answers one `false` for a whole array)."""
    if is_array(x):
        return isnull(x)
    return plain(x) is None


FIXES: dict[str, Callable] = {
    "eq": eq, "neq": neq, "gt": gt, "gte": gte, "lt": lt, "lte": lte, "between": between,
    "is_nan": is_nan, "is_valid": is_valid, "is_nodata": is_nodata,
}
