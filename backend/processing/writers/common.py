"""Shared pieces of the writers: the result record, errors, value classification and cube helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from apicore import errors

PROCESS = "save_result"
RASTER_DIMS = ("t", "bands", "y", "x")
# Raster cubes larger than this (number of values) are refused by the text formats (JSON, CSV).
MAX_TEXT_VALUES = 10_000_000


@dataclass
class WrittenResult:
    path: Path
    media_type: str
    filename: str


class FormatUnsuitable(errors.OpenEOError):
    """save_result's own exception (processes spec): the data does not fit the chosen format."""

    code = "FormatUnsuitable"
    status = 400
    template = "Data can't be transformed into the requested output format: {reason}"


class DataCubeEmpty(errors.OpenEOError):
    """save_result's own exception (processes spec): nothing to write."""

    code = "DataCubeEmpty"
    status = 400
    template = "The file format doesn't support storing empty data cubes: {reason}"


def unsuitable(fmt: str, reason: str) -> FormatUnsuitable:
    return FormatUnsuitable(reason=f"{fmt}: {reason}")


# --- classification ---------------------------------------------------------------------------

def is_geometry_array(values: Any) -> bool:
    """True for a 1-D numpy object array whose first non-null element is a shapely geometry."""
    import shapely

    if not isinstance(values, np.ndarray) or values.dtype != object or values.ndim != 1 or values.size == 0:
        return False
    for item in values[:10]:
        if item is not None:
            return isinstance(item, shapely.Geometry)
    return False


def geometry_dim(obj: xr.DataArray | xr.Dataset) -> str | None:
    """Name of the dimension that carries shapely geometries (xvec-style vector cube), else None."""
    for name, coord in obj.coords.items():
        if coord.ndim == 1 and coord.dims[0] in obj.dims and is_geometry_array(coord.values):
            return coord.dims[0]
    return None


def classify(value: Any) -> str:
    """'vector' (geometries as a dimension, or a GeoDataFrame), 'raster' (x and y dims), 'array'
    (a labelled DataArray without space, e.g. a time series) or 'plain' (JSON-able Python/numpy)."""
    if isinstance(value, (xr.DataArray, xr.Dataset)):
        if geometry_dim(value) is not None:
            return "vector"
        if "x" in value.dims and "y" in value.dims:
            return "raster"
        return "array"
    try:
        import geopandas as gpd

        if isinstance(value, gpd.GeoDataFrame):
            return "vector"
    except ImportError:  # pragma: no cover
        pass
    return "plain"


# --- cube helpers -------------------------------------------------------------------------------

def as_dataarray(value: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """A Dataset's data variables become the labels of a `bands` dimension."""
    if isinstance(value, xr.Dataset):
        return value.to_dataarray(dim="bands")
    return value


def raster_cube(value: Any, fmt: str, allowed_dims: tuple[str, ...] = RASTER_DIMS,
                allow_empty: bool = False) -> xr.DataArray:
    """The cube transposed to the canonical order (t, bands, y, x) (the dims it has)."""
    cube = as_dataarray(value)
    extra = [d for d in cube.dims if d not in allowed_dims]
    if extra:
        raise unsuitable(fmt, f"dimensions {extra} cannot be written; allowed: {list(allowed_dims)}")
    if cube.size == 0 and not allow_empty:
        raise DataCubeEmpty(reason=f"{fmt}: the cube has no values (shape {dict(cube.sizes)})")
    order = [d for d in RASTER_DIMS if d in cube.dims] + [d for d in cube.dims if d not in RASTER_DIMS]
    return cube.transpose(*order)


def float_cube(cube: xr.DataArray, keep_float64: bool = True) -> xr.DataArray:
    """Floats stay floats (float64 → float32 unless keep_float64); everything else becomes float32."""
    if cube.dtype == np.float32 or (keep_float64 and cube.dtype == np.float64):
        return cube
    return cube.astype("float32")


def streamable(cube: xr.DataArray, size: int = 1024) -> xr.DataArray:
    """An in-memory (numpy) cube as a dask array of *views* of its blocks, so the writers stream it block
    by block without whole-cube temporaries. (``DataArray.chunk`` → ``dask.array.from_array`` copies the
    whole numpy array first in this dask version.) Dask-backed cubes are returned as they are."""
    if cube.chunks is not None or not isinstance(cube.data, np.ndarray):
        return cube
    import itertools
    import uuid

    import dask.array as dsa
    from dask.array.core import normalize_chunks, slices_from_chunks

    array = cube.data
    chunks = normalize_chunks(tuple(size if dim in ("x", "y") else 1 for dim in cube.dims), array.shape,
                              dtype=array.dtype)
    name = f"writer-view-{uuid.uuid4().hex}"
    keys = itertools.product(*(range(len(c)) for c in chunks))
    graph = {(name, *key): array[block] for key, block in zip(keys, slices_from_chunks(chunks))}
    return cube.copy(data=dsa.Array(graph, name, chunks, dtype=array.dtype, meta=array[(slice(0, 0),) * array.ndim]))


def drop_single_time(cube: xr.DataArray) -> xr.DataArray:
    if "t" in cube.dims and cube.sizes["t"] == 1:
        return cube.isel(t=0, drop=False)
    return cube


def time_label(value: Any) -> str:
    """ISO label of a time coordinate value: a date if it is midnight, else date and time in UTC."""
    if isinstance(value, str):
        return value
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return str(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if stamp == stamp.normalize():
        return stamp.strftime("%Y-%m-%d")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def labels(cube: xr.DataArray | xr.Dataset, dim: str) -> list[str]:
    if dim not in cube.dims:
        return []
    if dim not in cube.coords:
        return [str(i) for i in range(cube.sizes[dim])]
    values = cube.coords[dim].values
    if dim == "t" or np.issubdtype(values.dtype, np.datetime64):
        return [time_label(v) for v in values]
    return [str(v) for v in values]


def bandless_name(cube: xr.DataArray, fallback: str) -> str:
    """What to call the values of a cube without a ``bands`` dimension (a netCDF variable, a GTiff band): the
    cube's name (ndvi names its result ``NDVI``), else the band label it still carries as a scalar ``bands``
    coordinate, else ``fallback``."""
    if cube.name is not None and str(cube.name).strip():
        return str(cube.name)
    label = cube.coords.get("bands")
    if label is not None and label.ndim == 0 and str(label.values.item()).strip():
        return str(label.values.item())
    return fallback


def cube_crs(obj: Any):
    """The cube's CRS as a rasterio CRS (rioxarray: spatial_ref/grid mapping, attrs) or None."""
    from rasterio.crs import CRS

    for name in obj.xindexes if hasattr(obj, "xindexes") else []:
        crs = getattr(obj.xindexes[name], "crs", None)  # xvec GeometryIndex
        if crs is not None:
            return CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
    try:
        import rioxarray  # noqa: F401  (registers .rio)

        crs = obj.rio.crs
    except Exception:  # noqa: BLE001  (rioxarray raises on odd cubes; no CRS then)
        crs = None
    if crs is None and isinstance(getattr(obj, "attrs", None), dict) and obj.attrs.get("crs"):
        try:
            crs = CRS.from_user_input(obj.attrs["crs"])
        except Exception:  # noqa: BLE001
            crs = None
    return crs


def sanitize_name(name: str) -> str:
    """netCDF/Zarr variable name from a band label ('/' is not allowed in either)."""
    cleaned = str(name).replace("/", "_").strip()
    return cleaned or "band"


def target(target_dir: Path, filename: str) -> Path:
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    return target_dir / filename
