"""Logic processes: and, or, xor, not, all, any.

openeo-processes-dask answers JSON booleans with floats (`and(true, true)` is `1.0`), raises on
`null` (`and(null, true)`: "bad operand type for unary ~"), and its `all`/`any` treat `null` as
false-ish (`all([true, null])` is `false`, `all([true, null], ignore_nodata=false)` is `0.0`, not
`null`). Here JSON values follow the spec's three-valued truth tables; arrays go to the library.
"""

from __future__ import annotations

from typing import Any, Callable

from openeo_processes_dask.process_implementations import logic as lib

from backend.processing.processes.values import is_array, json_list, plain


def _known(value: Any) -> bool:
    return value is not None


def and_(x: Any, y: Any) -> Any:
    if is_array(x) or is_array(y):
        return lib._and(x, y)
    x, y = plain(x), plain(y)
    if (_known(x) and not x) or (_known(y) and not y):
        return False
    if x is None or y is None:
        return None
    return True


def or_(x: Any, y: Any) -> Any:
    if is_array(x) or is_array(y):
        return lib._or(x, y)
    x, y = plain(x), plain(y)
    if (_known(x) and x) or (_known(y) and y):
        return True
    if x is None or y is None:
        return None
    return False


def xor(x: Any, y: Any) -> Any:
    if is_array(x) or is_array(y):
        return lib.xor(x, y)
    x, y = plain(x), plain(y)
    if x is None or y is None:
        return None
    return bool(x) != bool(y)


def not_(x: Any) -> Any:
    if is_array(x):
        return lib._not(x)
    x = plain(x)
    return None if x is None else not x


def all_(data: Any, ignore_nodata: bool = True, axis: int | None = None) -> Any:
    if is_array(data):
        return lib._all(data, ignore_nodata=ignore_nodata, axis=axis)
    values = json_list(data)
    known = [v for v in values if v is not None]
    if not known:
        return None  # empty, or only nulls
    if not all(known):
        return False
    if len(known) < len(values) and not ignore_nodata:
        return None
    return True


def any_(data: Any, ignore_nodata: bool = True, axis: int | None = None) -> Any:
    if is_array(data):
        return lib._any(data, ignore_nodata=ignore_nodata, axis=axis)
    values = json_list(data)
    known = [v for v in values if v is not None]
    if not known:
        return None
    if any(known):
        return True
    if len(known) < len(values) and not ignore_nodata:
        return None
    return False


FIXES: dict[str, Callable] = {"and": and_, "or": or_, "xor": xor, "not": not_, "all": all_, "any": any_}
