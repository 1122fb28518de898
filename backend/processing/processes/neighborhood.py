"""apply_neighborhood: a child process on tiles of the cube (with overlap), results put back together.

openeo-processes-dask has only ``apply_neighborhood_intertwin`` (a non-standard variant, withheld).
Here: the sizes split the named dimensions into tiles of ``size`` labels (``unit`` ``px``: pixels;
``m``: metres, or with ``unit`` null or omitted the unit of the dimension's reference system, converted
with the dimension's resolution — the spec's default; on a dimension without numeric coordinates a null
unit counts labels; ``value`` null or a dimension not named = the whole dimension); every tile
is handed to the process together with ``overlap`` labels on both sides (no-data beyond the cube's
borders, so every neighbourhood has the same shape); of the result only the tile itself is kept. The
process must return the neighbourhood's dimensions and sizes (``DataCubePropertiesImmutable``
otherwise). Temporal sizes or overlaps given as ISO 8601 durations are not supported (refused with
a clear message): give ``null`` (all dates) for ``t``.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np
import xarray as xr
from openeo_processes_dask.process_implementations.exceptions import DimensionNotAvailable, OpenEOException

from apicore import errors


class DataCubePropertiesImmutable(OpenEOException):
    """apply_neighborhood's exception (processes spec): the process changed the neighbourhood's shape."""


def _pixels(entry: dict, data: xr.DataArray, what: str) -> int | None:
    """A size/overlap entry in labels (pixels) of its dimension; None = the whole dimension."""
    dim, value, unit = entry.get("dimension"), entry.get("value"), entry.get("unit")
    if value is None:
        return None
    if isinstance(value, str):
        raise errors.ProcessParameterInvalid(
            f"apply_neighborhood: {what} for dimension '{dim}' is given as a duration ({value!r}); only pixel "
            "or metre sizes are supported: use null (all labels) for temporal dimensions.")
    coords = data[dim].values if dim in data.coords else None
    numeric = coords is not None and len(coords) >= 2 and np.issubdtype(np.asarray(coords).dtype, np.number)
    if unit == "m" and not numeric:
        raise errors.ProcessParameterInvalid(
            f"apply_neighborhood: {what} for dimension '{dim}' in metres needs numeric coordinates.")
    if unit == "m" or (unit is None and numeric):  # null: in the units of the coordinates (the CRS's)
        resolution = abs(float(coords[1]) - float(coords[0]))
        return max(1, int(round(float(value) / resolution)))
    return int(value)


def _chunk_sizes(spec: list | None, data: xr.DataArray, what: str) -> dict[str, int | None]:
    sizes = {}
    for entry in spec or []:
        dim = entry.get("dimension") if isinstance(entry, dict) else None
        if dim not in data.dims:
            raise DimensionNotAvailable(f"A dimension with the specified name does not exist: {dim!r} "
                                        f"(dimensions: {list(data.dims)})")
        sizes[dim] = _pixels(entry, data, what)
    return sizes


def _padded(data: xr.DataArray, overlap: dict[str, int], sizes: dict[str, int]) -> xr.DataArray:
    """The cube with ``overlap`` no-data labels on both sides (and after the last, partial tile up to a
    whole tile), so that every neighbourhood has the same shape; numeric coordinates continued evenly."""
    pads = {dim: (o, o + (-data.sizes[dim]) % sizes[dim]) for dim, o in overlap.items()}
    pads = {dim: pad for dim, pad in pads.items() if any(pad)}
    if not pads:
        return data
    padded = data.pad(pads, mode="constant", constant_values=np.nan)
    for dim, (before, _) in pads.items():
        if dim in data.coords and np.issubdtype(data[dim].dtype, np.number) and data.sizes[dim] >= 2:
            values = data[dim].values
            step = values[1] - values[0]
            padded = padded.assign_coords({dim: values[0] + step * (np.arange(padded.sizes[dim]) - before)})
    return padded


def apply_neighborhood(data: xr.DataArray, process: Callable, size: list, overlap: list | None = None,
                       context: Any = None) -> xr.DataArray:
    sizes = _chunk_sizes(size, data, "size")
    overlaps = {dim: o or 0 for dim, o in _chunk_sizes(overlap, data, "overlap").items()}
    tiled = [dim for dim in data.dims if sizes.get(dim) is not None and sizes[dim] < data.sizes[dim]]
    for dim in tiled:
        if sizes[dim] <= 0:
            raise errors.ProcessParameterInvalid(f"apply_neighborhood: the size of dimension '{dim}' must be > 0.")
    overlaps = {dim: overlaps.get(dim, 0) for dim in tiled}  # overlap matters only where there are tiles
    padded = _padded(data, overlaps, sizes)
    starts = {dim: range(0, data.sizes[dim], sizes[dim]) for dim in tiled}
    pieces = {}
    for corner in itertools.product(*(starts[dim] for dim in tiled)):
        window, inner = {}, {}
        for dim, start in zip(tiled, corner):
            length = min(sizes[dim], data.sizes[dim] - start)
            window[dim] = slice(start, start + sizes[dim] + 2 * overlaps[dim])  # in padded positions
            inner[dim] = slice(overlaps[dim], overlaps[dim] + length)
        neighbourhood = padded.isel(window)
        result = process(named_parameters={"data": neighbourhood, "context": context})
        pieces[corner] = _checked(result, neighbourhood).isel(inner)
    if not tiled:
        return pieces[()]
    nested = _nest(pieces, [list(starts[dim]) for dim in tiled])
    combined = xr.combine_nested(nested, concat_dim=tiled, combine_attrs="override")
    return combined.transpose(*data.dims)


def _checked(result: Any, neighbourhood: xr.DataArray) -> xr.DataArray:
    if not isinstance(result, xr.DataArray) or set(result.dims) != set(neighbourhood.dims) or any(
            result.sizes[d] != neighbourhood.sizes[d] for d in neighbourhood.dims):
        got = dict(result.sizes) if isinstance(result, xr.DataArray) else type(result).__name__
        raise DataCubePropertiesImmutable(
            "The process of apply_neighborhood must return the neighbourhood's dimensions and sizes "
            f"{dict(neighbourhood.sizes)}; it returned {got}.")
    # the labels stay those of the input (the spec: dimension properties remain unchanged)
    return result.assign_coords({d: neighbourhood[d] for d in neighbourhood.dims if d in neighbourhood.coords})


def _nest(pieces: dict[tuple, xr.DataArray], starts: list[list[int]]) -> list:
    """The tiles as nested lists in the order of the tiled dimensions (for xr.combine_nested)."""
    def build(prefix: tuple, level: int):
        if level == len(starts):
            return pieces[prefix]
        return [build(prefix + (s,), level + 1) for s in starts[level]]

    return build((), 0)


FIXES: dict[str, Callable] = {"apply_neighborhood": apply_neighborhood}
