"""apply_dimension as the openEO spec defines it (openeo-processes-dask gets the labels wrong).

openeo-processes-dask's ``apply_dimension``:

* never keeps the source labels: it means to when the process returns as many values as it got, but
  its statement is a comparison (``result[dim] == labels``), not an assignment, so e.g. ``quantiles``
  of two bands come back labelled 0, 1 instead of B04, B08;
* gives the callback no ``dim_labels``, so ``array_element(label=...)`` inside fails with
  ArrayNotLabeled although the array is labelled (reduce_dimension passes them);
* passes ``keepdims=True`` to the callback whenever ``target_dimension`` is set, so ``quantiles``
  returns an array with an extra axis and the process fails ("Received 5 dimension(s) but expected 4").

Here the callback gets the values along the dimension as the last axis of a numpy/dask array, with
``axis`` and ``dim_labels``, and may return per element an array (any length >= 1) or one value
(a reducer: a dimension of one label). The three cases of the spec's return value:

1. target = source: labels (and coordinates along them, e.g. the bands' ``common_name``) kept if the process
   returns as many values as there are labels, else 0..n-1;
2. target exists with a single label: the source dimension is dropped, the target holds the values,
   labels 0..n-1;
3. target does not exist: the source dimension is replaced by the target, labels 0..n-1.

A target that exists with more than one label is not defined by the spec: refused with an explanation.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import xarray as xr
from openeo_processes_dask.process_implementations.exceptions import DimensionNotAvailable

from apicore import errors


def _as_array(value: Any) -> Any:
    """The callback's answer as a numpy/dask array (labelled arrays lose their labels here)."""
    if isinstance(value, xr.DataArray):
        return value.data
    if hasattr(value, "ndim") and hasattr(value, "shape"):
        return value
    return np.asarray(value)


def _per_element(result: Any, outer: tuple[int, ...]) -> Any:
    """The answer with one array of values (last axis) per element of ``outer``."""
    if result.ndim == len(outer) + 1 and tuple(result.shape[:-1]) == outer:
        return result
    if result.ndim == len(outer) and tuple(result.shape) == outer:  # one value each (a reducer)
        return result[..., None]
    if result.ndim == 0:  # one constant for every element
        return np.broadcast_to(np.asarray(result)[None], (*outer, 1))
    if result.ndim == 1:  # one constant array for every element
        return np.broadcast_to(np.asarray(result), (*outer, result.shape[0]))
    raise errors.ProcessParameterInvalid(
        process="apply_dimension", parameter="process",
        reason=f"the process returned values of shape {tuple(result.shape)}; expected an array (or a single "
               f"value) for each of the {outer} elements along the other dimensions")


def apply_dimension(data: xr.DataArray, process: Callable, dimension: str, target_dimension: str | None = None,
                    context: Any = None) -> xr.DataArray:
    if dimension not in data.dims:
        raise DimensionNotAvailable(f"A dimension with the specified name does not exist: {dimension!r} "
                                    f"(dimensions: {list(data.dims)})")
    target = None if target_dimension in (None, dimension) else target_dimension
    if target is not None and target in data.dims and data.sizes[target] != 1:
        raise errors.ProcessParameterInvalid(
            f"apply_dimension: the target dimension {target!r} already exists with {data.sizes[target]} labels. "
            "The openEO process defines a target dimension that does not exist yet or has a single label only: "
            f"reduce {target!r} first or choose a new name for target_dimension.")

    moved = data.transpose(..., dimension)
    axis = moved.ndim - 1
    labels = moved[dimension].values if dimension in moved.coords else np.arange(moved.sizes[dimension])
    values = moved.data
    result = process(values, positional_parameters={"data": 0}, named_parameters={"context": context},
                     axis=axis, dim_labels=labels, source_transposed_axis=data.get_axis_num(dimension))
    result = _per_element(_as_array(result), tuple(values.shape[:-1]))
    count = result.shape[-1]
    if count == 0:
        raise errors.ProcessParameterInvalid(process="apply_dimension", parameter="process",
                                             reason="the process must return an array with at least one element")

    coords = {name: coord for name, coord in moved.coords.items() if dimension not in coord.dims}
    out = xr.DataArray(result, dims=moved.dims, coords=coords, attrs=dict(moved.attrs), name=data.name)
    if target is None:  # case 1; labels kept: so are the coordinates along them (bands' common_name)
        if count != len(labels):
            return out.assign_coords({dimension: np.arange(count)}).transpose(*data.dims)
        along = {name: coord.variable for name, coord in moved.coords.items() if coord.dims == (dimension,)}
        return out.assign_coords({dimension: labels, **along}).transpose(*data.dims)
    if target in data.dims:  # case 2: fill the single-label target, drop the source
        out = out.squeeze(target, drop=True).rename({dimension: target})
        order = [d for d in data.dims if d != dimension]
    else:  # case 3: the source is replaced by the new target
        out = out.rename({dimension: target})
        order = [target if d == dimension else d for d in data.dims]
    return out.assign_coords({target: np.arange(count)}).transpose(*order)
