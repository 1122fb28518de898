"""Statistics over JSON arrays: min, max, mean, median, sd, variance, sum, product, extrema,
quantiles, first, last, count.

openeo-processes-dask hands a JSON list straight to numpy: a ``null`` element raises ("'<=' not
supported between instances of 'float' and 'NoneType'") instead of being ignored (``ignore_nodata``,
default true) or making the result ``null`` (``ignore_nodata: false``); an empty list raises or
answers NaN where the spec answers ``null``; ``quantiles`` of a list fails ("'list' object has no
attribute 'size'"); ``first``/``last`` skip no null before a string. Arrays (callback data with an
``axis``) still go to the library.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from openeo_processes_dask.process_implementations import arrays as lib_arrays
from openeo_processes_dask.process_implementations import math as lib
from openeo_processes_dask.process_implementations.exceptions import (QuantilesParameterConflict,
                                                                      QuantilesParameterMissing)

from apicore import errors
from backend.processing.processes.values import is_array, is_number, json_list, plain

_MISSING = object()  # "the result is null"


def _values(data: Any, ignore_nodata: bool) -> Any:
    """The list's values without nulls, or _MISSING if a null makes the result null."""
    values = json_list(data)
    known = [v for v in values if v is not None]
    if len(known) < len(values) and not ignore_nodata:
        return _MISSING
    return known


def _reducer(library_function: Callable, compute: Callable[[list], Any]) -> Callable:
    def reducer(data: Any, ignore_nodata: bool = True, axis: int | None = None, keepdims: bool = False) -> Any:
        if is_array(data):
            return library_function(data, ignore_nodata=ignore_nodata, axis=axis, keepdims=keepdims)
        values = _values(data, ignore_nodata)
        if values is _MISSING or not values:
            return None
        return compute(values)

    reducer.__name__ = reducer.__qualname__ = library_function.__name__.lstrip("_")
    return reducer


def _float(value: Any) -> float:
    return float(value)


def _sample(compute: Callable[[np.ndarray], Any]) -> Callable[[list], Any]:
    def on_values(values: list) -> Any:
        if len(values) < 2:
            return None  # the sample statistic (n - 1) of one value is undefined
        return _float(compute(np.asarray(values, dtype="float64")))

    return on_values


min_ = _reducer(lib._min, min)
max_ = _reducer(lib._max, max)
mean = _reducer(lib.mean, lambda values: _float(np.mean(np.asarray(values, dtype="float64"))))
median = _reducer(lib.median, lambda values: _float(np.median(np.asarray(values, dtype="float64"))))
sd = _reducer(lib.sd, _sample(lambda a: np.std(a, ddof=1)))
variance = _reducer(lib.variance, _sample(lambda a: np.var(a, ddof=1)))
sum_ = _reducer(lib._sum, lambda values: math.fsum(values) if any(isinstance(v, float) for v in values)
                else sum(values))
product = _reducer(lib.product, math.prod)


def extrema(data: Any, ignore_nodata: bool = True, axis: int | None = None, keepdims: bool = False) -> Any:
    if is_array(data):
        return lib.extrema(data, ignore_nodata=ignore_nodata, axis=axis, keepdims=keepdims)
    values = _values(data, ignore_nodata)
    if values is _MISSING or not values:
        return [None, None]
    return [min(values), max(values)]


def quantiles(data: Any, probabilities: Any = None, q: int | None = None, ignore_nodata: bool = True,
              axis: int | None = None, keepdims: bool = False) -> Any:
    if is_array(data):
        return lib.quantiles(data, probabilities=probabilities, q=q, ignore_nodata=ignore_nodata, axis=axis,
                             keepdims=keepdims)
    if probabilities is not None and q is not None:
        raise QuantilesParameterConflict("The process `quantiles` only allows that either the `probabilities` "
                                         "or the `q` parameter is set.")
    if probabilities is None and q is None:
        raise QuantilesParameterMissing("The process `quantiles` requires either the `probabilities` or `q` "
                                        "parameter to be set.")
    intervals = q if probabilities is None else probabilities
    if is_number(intervals):  # q-quantiles: the q - 1 cut points
        probabilities = [i / intervals for i in range(1, int(intervals))]
    else:
        probabilities = json_list(intervals)
    values = _values(data, ignore_nodata)
    if values is _MISSING or not values:
        return [None] * len(probabilities)
    result = np.quantile(np.asarray(values, dtype="float64"), probabilities, method="linear")
    return [float(v) for v in result]


def first(data: Any, ignore_nodata: bool = True, axis: int | None = None) -> Any:
    if is_array(data):
        return lib_arrays.first(data, ignore_nodata=ignore_nodata, axis=axis)
    values = json_list(data)
    if ignore_nodata:
        values = [v for v in values if v is not None]
    return values[0] if values else None


def last(data: Any, ignore_nodata: bool = True, axis: int | None = None) -> Any:
    if is_array(data):
        return lib_arrays.last(data, ignore_nodata=ignore_nodata, axis=axis)
    values = json_list(data)
    if ignore_nodata:
        values = [v for v in values if v is not None]
    return values[-1] if values else None


def count(data: Any, condition: Any = None, context: Any = None, axis: int | None = None,
          keepdims: bool = False) -> Any:
    if is_array(data):
        return lib_arrays.count(data, condition=condition, context=context, axis=axis, keepdims=keepdims)
    from backend.processing.processes.comparison import is_valid

    values = json_list(data)
    if condition is None:
        return sum(1 for v in values if is_valid(v))
    if condition is True:
        return len(values)
    if callable(condition):
        return sum(1 for v in values if plain(condition(named_parameters={"x": v, "context": context})) is True)
    raise errors.ProcessParameterInvalid(process="count", parameter="condition",
                                         reason="must be null, true or a child process")


FIXES: dict[str, Callable] = {
    "min": min_, "max": max_, "mean": mean, "median": median, "sd": sd, "variance": variance, "sum": sum_,
    "product": product, "extrema": extrema, "quantiles": quantiles, "first": first, "last": last, "count": count,
}
