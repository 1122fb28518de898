"""JSON and CSV for raster cubes, label-only arrays (e.g. time series) and plain values.

JSON of a cube (raster or label-only array; at most MAX_TEXT_VALUES values)::

    {"type": "openeo:datacube",            # marks this layout
     "dims": ["t", "bands", "y", "x"],      # order of the nested lists
     "coords": {"t": ["2022-06-01", ...], "bands": ["B04", "B08"], "y": [...], "x": [...]},
     "crs": "EPSG:32632" | WKT | null,      # only for cubes with x and y
     "data": [[[[0.1, null, ...]]]]}        # nested lists, NaN → null

x/y are pixel-centre coordinates; t labels are ISO dates (ISO date-times if not at midnight, UTC).

JSON of a plain value (a graph that ends in a non-cube process): the value itself; numpy numbers and
arrays become numbers and lists, NaN/±inf → null, dates → ISO strings, shapely geometries → GeoJSON
geometry objects, a 0-dimensional DataArray → its value.

CSV of a cube (at most MAX_TEXT_VALUES values): one row per combination of the labels of every
dimension except ``bands`` (a time series: one row per date); the columns are those dimensions
(``t`` is written as ``date``), then one column per band (or ``value`` / the cube's name); NaN → empty.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .common import (MAX_TEXT_VALUES, WrittenResult, as_dataarray, cube_crs, labels, raster_cube, target,
                     time_label, unsuitable)

JSON_MEDIA_TYPE = "application/json"
CSV_MEDIA_TYPE = "text/csv"
JSON_FILENAME = "result.json"
CSV_FILENAME = "result.csv"


def check_size(cube: xr.DataArray, fmt: str) -> None:
    if cube.size > MAX_TEXT_VALUES:
        raise unsuitable(fmt, f"the cube has {cube.size} values ({dict(cube.sizes)}), above the limit of "
                              f"{MAX_TEXT_VALUES} for {fmt}: use GTiff, netCDF or Zarr")


def jsonable(value: Any) -> Any:
    """A JSON-serialisable copy of a plain value (see the module doc)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return time_label(value)
        if isinstance(value, np.float32):
            return float(str(value)) if np.isfinite(value) else None
        return jsonable(value.item())
    if isinstance(value, (dt.datetime, dt.date, pd.Timestamp)):
        return time_label(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(item) for item in value]
    if isinstance(value, xr.DataArray) and value.ndim == 0:
        return jsonable(value.values[()])
    if hasattr(value, "__array__") or hasattr(value, "compute"):
        array = np.asarray(value.compute() if hasattr(value, "compute") else value)
        if array.size > MAX_TEXT_VALUES:
            raise unsuitable("JSON", f"the array has {array.size} values, above the limit of {MAX_TEXT_VALUES}")
        return nested(array)
    try:
        import shapely

        if isinstance(value, shapely.Geometry):
            return shapely.geometry.mapping(value)
    except ImportError:  # pragma: no cover
        pass
    raise unsuitable("JSON", f"a value of type {type(value).__name__} cannot be written as JSON")


def nested(array: np.ndarray) -> Any:
    """Nested lists; NaN/inf → None; datetimes → ISO strings."""
    if np.issubdtype(array.dtype, np.datetime64):
        return np.vectorize(time_label, otypes=[object])(array).tolist() if array.ndim else time_label(array[()])
    if array.dtype == np.float32:  # shortest repr that reads back to the same float32 ('0.1', not 0.100000001)
        as_object = np.vectorize(float, otypes=[object])(array.astype(str)) if array.size else array.astype(object)
        as_object[~np.isfinite(array)] = None
        return as_object.tolist()
    if np.issubdtype(array.dtype, np.floating):
        as_object = array.astype(object)
        as_object[~np.isfinite(array)] = None
        return as_object.tolist()
    if array.dtype == object:
        return jsonable(array.tolist())
    return array.tolist()


def cube_document(value, fmt: str = "JSON") -> dict:
    cube = raster_cube(value, fmt, allowed_dims=tuple(str(d) for d in as_dataarray(value).dims), allow_empty=True)
    check_size(cube, fmt)
    coords = {}
    for dim in cube.dims:
        if dim in ("t", "bands"):
            coords[dim] = labels(cube, dim)
        elif dim in cube.coords:
            coords[dim] = nested(np.asarray(cube.coords[dim].values))
        else:
            coords[dim] = list(range(cube.sizes[dim]))
    document: dict[str, Any] = {"type": "openeo:datacube", "dims": [str(d) for d in cube.dims], "coords": coords}
    if "x" in cube.dims and "y" in cube.dims:
        crs = cube_crs(cube)
        document["crs"] = None if crs is None else (crs.to_string() if crs.to_epsg() else crs.to_wkt())
    document["data"] = nested(np.asarray(cube.values))
    return document


def write_json(value, options: dict, target_dir: Path) -> WrittenResult:
    if isinstance(value, (xr.DataArray, xr.Dataset)) and not (isinstance(value, xr.DataArray) and value.ndim == 0):
        document = cube_document(value)
    else:
        document = jsonable(value)
    path = target(target_dir, JSON_FILENAME)
    with path.open("w", encoding="utf-8") as file:
        json.dump(document, file, allow_nan=False, separators=(",", ":"))
    return WrittenResult(path=path, media_type=JSON_MEDIA_TYPE, filename=JSON_FILENAME)


def write_csv(value, options: dict, target_dir: Path) -> WrittenResult:
    """CSV of a raster cube or label-only array (vector cubes: :func:`vector.write_csv`)."""
    if not isinstance(value, (xr.DataArray, xr.Dataset)) or not value.dims:
        raise unsuitable("CSV", "only data cubes can be written as CSV: use JSON for plain values")
    cube = raster_cube(value, "CSV", allowed_dims=tuple(str(d) for d in as_dataarray(value).dims),
                       allow_empty=True)
    check_size(cube, "CSV")
    cube = cube.drop_vars([c for c in cube.coords if c not in cube.dims])
    row_dims = [d for d in cube.dims if d != "bands"]
    if "bands" in cube.dims:
        band_names = labels(cube, "bands")
        columns = {name: cube.isel(bands=i, drop=True) for i, name in enumerate(band_names)}
    else:
        columns = {str(cube.name) if cube.name is not None else "value": cube}
    shape = [cube.sizes[d] for d in row_dims]
    table: dict[str, Any] = {}
    for axis, dim in enumerate(row_dims):
        values = labels(cube, dim) if dim == "t" else (
            cube.coords[dim].values if dim in cube.coords else np.arange(cube.sizes[dim]))
        grid = np.broadcast_to(np.asarray(values).reshape([-1 if i == axis else 1 for i in range(len(shape))]), shape)
        table["date" if dim == "t" else str(dim)] = grid.ravel()
    for name, column in columns.items():
        while name in table:
            name += "_"
        table[name] = np.asarray(column.transpose(*row_dims).values).ravel()
    path = target(target_dir, CSV_FILENAME)
    pd.DataFrame(table).to_csv(path, index=False, na_rep="")
    return WrittenResult(path=path, media_type=CSV_MEDIA_TYPE, filename=CSV_FILENAME)
