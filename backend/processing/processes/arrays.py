"""Array processes on JSON arrays: array_append, array_concat, array_element, array_find,
array_filter, array_apply, array_interpolate_linear, order, sort, text_concat.

openeo-processes-dask turns JSON lists into numpy arrays first, which loses their types and nulls:
`array_concat(["a", "b"], [1, 2])` gives `["a", "b", "1", "2"]`; `array_find` answers 999999 (a
masked-array fill value) instead of `null` where nothing matches, and finds `[1, 2]` in `[[1, 2], ...]`
or a `null`; `array_element` with a negative index counts from the end
instead of failing, and with `return_nodata` on a plain list raises; `order`/`sort`/
`array_interpolate_linear` raise on `null`; `array_append` with a `label` on an unlabeled array does
not fail; `array_apply`/`array_filter` pass neither `index` nor `label` to the callback;
`text_concat` writes `null` as "none". Here JSON lists follow the spec; numpy/dask arrays and
labeled arrays (xarray) go to the library.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Callable

from openeo_processes_dask.process_implementations import arrays as lib
from openeo_processes_dask.process_implementations import text as lib_text
from openeo_processes_dask.process_implementations.exceptions import (ArrayElementNotAvailable,
                                                                      ArrayElementParameterConflict,
                                                                      ArrayElementParameterMissing,
                                                                      ArrayNotLabeled)

from backend.processing.processes.comparison import equal_values
from backend.processing.processes.values import is_list, is_number, json_list, plain


def _callback_value(callback: Callable, **parameters: Any) -> Any:
    return plain(callback(named_parameters=parameters))


def array_append(data: Any, value: Any, label: Any = None, dim_labels: Any = None, axis: int | None = None) -> Any:
    if not is_list(data):
        return lib.array_append(data, value, label=label, dim_labels=dim_labels, axis=axis)
    if label is not None:
        raise ArrayNotLabeled("The array is not a labeled array, but the `label` parameter is set.")
    return json_list(data) + [plain(value)]


def array_concat(array1: Any, array2: Any, axis: int | None = None) -> Any:
    if is_list(array1) and is_list(array2):
        return json_list(array1) + json_list(array2)
    return lib.array_concat(array1, array2, axis=axis)


def array_element(data: Any, index: int | None = None, label: Any = None, return_nodata: bool = False,
                  axis: int | None = None, context: Any = None, dim_labels: Any = None) -> Any:
    if not is_list(data):
        return lib.array_element(data, index=index, label=label, return_nodata=return_nodata, axis=axis,
                                 context=context, dim_labels=dim_labels)
    if index is None and label is None:
        raise ArrayElementParameterMissing("The process `array_element` requires either the `index` or "
                                           "`label` parameter to be set.")
    if index is not None and label is not None:
        raise ArrayElementParameterConflict("The process `array_element` only allows that either the `index` or "
                                            "the `label` parameter is set.")
    if label is not None:
        raise ArrayNotLabeled("The array is not a labeled array, but the `label` parameter is set. "
                              "Use the `index` instead.")
    if 0 <= index < len(data):
        return plain(data[index])
    if return_nodata:
        return None
    raise ArrayElementNotAvailable(f"The array has no element with the specified index: {index}")


def array_find(data: Any, value: Any, reverse: bool = False, axis: int | None = None) -> Any:
    if not is_list(data):
        return lib.array_find(data, value, reverse=reverse, axis=axis)
    value = plain(value)
    positions = range(len(data) - 1, -1, -1) if reverse else range(len(data))
    for i in positions:
        if equal_values(plain(data[i]), value) is True:  # null from eq is no match
            return i
    return None


def array_filter(data: Any, condition: Callable, context: Any = None, axis: int | None = None) -> Any:
    if not is_list(data):
        return lib.array_filter(data, condition, context=context, axis=axis)
    values = json_list(data)
    return [v for i, v in enumerate(values)
            if _callback_value(condition, x=v, index=i, label=None, context=context) is True]


def array_apply(data: Any, process: Callable, context: Any = None) -> Any:
    if not is_list(data):
        return lib.array_apply(data, process, context=context)
    return [_callback_value(process, x=v, index=i, label=None, context=context)
            for i, v in enumerate(json_list(data))]


def array_interpolate_linear(data: Any, axis: int | None = None, dim_labels: Any = None) -> Any:
    """Fills null/NaN between two valid numbers linearly (by position); no extrapolation at the ends."""
    if not is_list(data):
        return lib.array_interpolate_linear(data, axis=axis, dim_labels=dim_labels)
    values = json_list(data)
    valid = [i for i, v in enumerate(values) if is_number(v) and not math.isnan(v)]
    out = list(values)
    for left, right in zip(valid, valid[1:]):
        for i in range(left + 1, right):
            weight = (i - left) / (right - left)
            out[i] = values[left] + (values[right] - values[left]) * weight
    return [None if isinstance(v, float) and math.isnan(v) else v for v in out]


def _sort_key(value: Any) -> Any:
    """Numbers by value, temporal strings by their instant (not by their text)."""
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.timestamp()
    return value


def _ranked(values: list, asc: bool, nodata: bool | None) -> list[int]:
    known = [i for i, v in enumerate(values) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    missing = [i for i in range(len(values)) if i not in set(known)]
    ranked = sorted(known, key=lambda i: _sort_key(values[i]), reverse=not asc)  # stable, also reversed
    if nodata is None:
        return ranked
    return ranked + missing if nodata else missing + ranked


def order(data: Any, asc: bool = True, nodata: bool | None = None, axis: int | None = None) -> Any:
    if not is_list(data):
        return lib.order(data, asc=asc, nodata=nodata, axis=axis)
    return _ranked(json_list(data), asc, nodata)


def sort(data: Any, asc: bool = True, nodata: bool | None = None, axis: int | None = None) -> Any:
    if not is_list(data):
        return lib.sort(data, asc=asc, nodata=nodata, axis=axis)
    values = json_list(data)
    return [values[i] for i in _ranked(values, asc, nodata)]


def _text(value: Any) -> str:
    value = plain(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def text_concat(data: Any, separator: Any = "") -> str:
    if not is_list(data):
        return lib_text.text_concat(data, separator)
    return _text(separator).join(_text(v) for v in data)


FIXES: dict[str, Callable] = {
    "array_append": array_append, "array_concat": array_concat, "array_element": array_element,
    "array_find": array_find, "array_filter": array_filter, "array_apply": array_apply,
    "array_interpolate_linear": array_interpolate_linear, "order": order, "sort": sort,
    "text_concat": text_concat,
}
