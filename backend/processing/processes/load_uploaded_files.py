"""load_uploaded_files: a file of the caller's own workspace (``/files``) as a data cube.

Formats (case-insensitive, listed under ``input`` of GET /file_formats):

* ``GTiff``: a GeoTIFF, read lazily (rioxarray, dask chunks) into a cube (bands, y, x); nodata becomes NaN;
  band labels are the file's band descriptions when all are set and distinct, else ``band1``, ``band2``, ...
* ``netCDF``: every variable on the file's spatial grid (x/y, lon/lat or longitude/latitude, and an
  optional time) becomes a band of a (t, bands, y, x) cube; the CRS from its grid mapping, else WGS 84 for
  lon/lat names. Our own netCDF results read back this way.
* ``GeoJSON``: a vector cube, as load_geojson returns it (e.g. the geometries of aggregate_spatial).

One file per call (several rasters are combined with merge_cubes). Paths are looked up in the caller's
workspace only (``RunContext.user_id``): as the spec says, ``/a.tif``, ``./a.tif`` and ``a.tif`` are the
same file, and a path outside the workspace (``../x``) or of someone else's is FileNotFound. No reading
options exist; the files are read where the graph runs (the web worker, or the batch job's Dask workers,
which must see ``files_dir``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import xarray as xr

from apicore import errors
from apicore.file_paths import checked_file_path
from backend.processing.limits import check_cube_size
from backend.processing.processes.load_geojson import geojson_cube
from backend.processing.processes.load_url import FormatUnsuitable
from backend.processing.processes.values import plain

PROCESS = "load_uploaded_files"
CHUNK = 2048  # pixels per side of a lazily read block
INPUT_FORMATS: dict[str, dict] = {
    "GTiff": {
        "title": "GeoTIFF",
        "description": "A GeoTIFF of your file workspace (/files), read by load_uploaded_files into a raster "
                       "cube (bands, y, x); nodata becomes NaN, band descriptions become band labels.",
        "gis_data_types": ["raster"],
        "parameters": {},
    },
    "netCDF": {
        "title": "netCDF",
        "description": "A netCDF file of your file workspace (/files), read by load_uploaded_files: every "
                       "variable on the spatial grid (x/y or lon/lat, optional time) becomes a band.",
        "gis_data_types": ["raster"],
        "parameters": {},
    },
    "GeoJSON": {
        "title": "GeoJSON",
        "description": "An RFC 7946 GeoJSON document (FeatureCollection, Feature or geometry; "
                       "GeometryCollection is not supported), read into a vector cube with one geometry per "
                       "feature; feature properties are kept. Read by load_url from allowed hosts and by "
                       "load_uploaded_files from your file workspace.",
        "gis_data_types": ["vector"],
        "parameters": {},
    },
}


def resolve_format(name: Any) -> str:
    lookup = {key.lower(): key for key in INPUT_FORMATS}
    if isinstance(name, str) and name.strip().lower() in lookup:
        return lookup[name.strip().lower()]
    supported = ", ".join(INPUT_FORMATS)
    raise errors.FormatUnsupported(f"Format '{name}' is not supported by {PROCESS}. Supported input formats: "
                                   f"{supported}.", format=name, supported=supported)


def check_arguments(paths: Any, format: Any, options: Any) -> tuple[str, str]:
    """The one workspace path and the canonical format; the errors name the parameter (no file is read)."""
    name = resolve_format(plain(format))
    if options not in (None, {}):
        raise errors.ProcessParameterInvalid(process=PROCESS, parameter="options", reason=(
            f"format {name} has no reading options; leave options empty"))
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, (list, tuple)) or not paths or not all(isinstance(p, str) for p in paths):
        raise errors.ProcessParameterInvalid(process=PROCESS, parameter="paths",
                                             reason="expected a list of workspace file paths, e.g. ['data.tif']")
    if len(paths) > 1:
        raise errors.ProcessParameterInvalid(process=PROCESS, parameter="paths", reason=(
            f"{len(paths)} files given; load one file per call and combine the cubes (merge_cubes)"))
    return workspace_path(paths[0]), name


def workspace_path(path: str) -> str:
    """``/a/b.tif`` and ``./a/b.tif`` are ``a/b.tif`` (the spec); anything leaving the workspace is not found."""
    relative = path
    while relative.startswith("/") or relative.startswith("./"):
        relative = relative[1:] if relative.startswith("/") else relative[2:]
    try:
        return checked_file_path(relative)
    except errors.FilePathInvalid as exc:
        raise errors.FileNotFound(f"File '{path}' does not exist in your workspace ({exc.message}).") from None


def load_uploaded_files(paths: Any, format: Any, options: Any = None, *, run_context: Any) -> xr.DataArray:
    path, name = check_arguments(plain(paths), format, plain(options))
    services, user_id = getattr(run_context, "services", None), getattr(run_context, "user_id", None)
    if services is None or user_id is None:
        raise errors.FileNotFound(f"File '{path}' does not exist: only an authenticated user's graph can read "
                                  "their workspace.")
    local = services.files.file(user_id, path)  # FileNotFound, FilePathInvalid (links), folders refused
    limit = services.settings.fetch_max_bytes
    if name == "GeoJSON" and local.stat().st_size > limit:  # read whole into memory: the fetch limit holds
        raise errors.ProcessParameterInvalid(process=PROCESS, parameter="paths", reason=(
            f"'{path}' is larger than {limit:,} bytes, the most a GeoJSON document may have (fetch_max_bytes)"))
    reader = {"GTiff": _read_geotiff, "netCDF": _read_netcdf, "GeoJSON": _read_geojson}[name]
    cube = reader(local, path)
    if name != "GeoJSON":
        check_cube_size(cube, getattr(run_context, "max_pixels", None), PROCESS)
        if hasattr(run_context, "input_values"):
            run_context.input_values += int(cube.size)
    return cube


def _read_geotiff(local: Path, path: str) -> xr.DataArray:
    import rasterio
    import rioxarray

    try:
        # GDAL's GeoTIFF driver only: GDAL recognises a file by its content, and a VRT (XML) uploaded as
        # a.tif would make the server read any URL (/vsicurl/) or any file of the server that it names
        cube = rioxarray.open_rasterio(local, masked=True, chunks={"band": 1, "x": CHUNK, "y": CHUNK},
                                       driver="GTiff")
    except rasterio.errors.RasterioIOError as exc:
        raise FormatUnsuitable(reason=f"'{path}' is not a GeoTIFF GDAL can read ({exc})") from None
    if isinstance(cube, list) or cube.rio.crs is None:
        raise FormatUnsuitable(reason=f"'{path}' has {'several subdatasets' if isinstance(cube, list) else 'no CRS'}; "
                                      "upload a georeferenced single-image GeoTIFF")
    descriptions = cube.attrs.get("long_name")
    labels = list(descriptions) if isinstance(descriptions, (list, tuple)) else [descriptions]
    if not all(isinstance(label, str) and label for label in labels) or len(set(labels)) != cube.sizes["band"]:
        labels = [f"band{i}" for i in range(1, cube.sizes["band"] + 1)]
    cube = cube.rename(band="bands").assign_coords(bands=labels)
    cube.attrs = {key: value for key, value in cube.attrs.items() if key not in ("long_name", "_FillValue")}
    return cube


_X, _Y, _T = ("x", "lon", "longitude"), ("y", "lat", "latitude"), ("t", "time")


def _netcdf_engine(local: Path) -> str | None:
    """xarray's engine for the file's format, chosen by its signature: never xarray's guess, which could hand
    the file to GDAL (the rasterio engine, see above). Both engines are thread-safe, the netCDF4 library is
    not (writers/raster_netcdf.py)."""
    with local.open("rb") as file:
        head = file.read(8)
    if head == b"\x89HDF\r\n\x1a\n":
        return "h5netcdf"
    if head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02"):  # classic netCDF (64-bit offsets: 2)
        return "scipy"
    return None


def _read_netcdf(local: Path, path: str) -> xr.DataArray:
    import rioxarray  # noqa: F401  (registers .rio)

    engine = _netcdf_engine(local)
    if engine is None:
        raise FormatUnsuitable(reason=f"'{path}' is not a netCDF file (neither netCDF-4/HDF5 nor classic netCDF)")
    try:
        dataset = xr.open_dataset(local, chunks={}, decode_coords="all", engine=engine)
    except (OSError, ValueError, TypeError) as exc:
        raise FormatUnsuitable(reason=f"'{path}' is not a netCDF file xarray can read ({exc})") from None
    x = next((d for d in _X if d in dataset.dims), None)
    y = next((d for d in _Y if d in dataset.dims), None)
    if x is None or y is None:
        raise FormatUnsuitable(reason=f"'{path}' has no spatial grid (dimensions {sorted(map(str, dataset.dims))}; "
                                      "expected x/y, lon/lat or longitude/latitude)")
    t = next((d for d in _T if d in dataset.dims), None)
    wanted = {x, y} | ({t} if t else set())
    bands = [name for name, var in dataset.data_vars.items() if set(var.dims) == wanted]
    if not bands:
        raise FormatUnsuitable(reason=f"'{path}' has no variable on its ({', '.join(sorted(wanted))}) grid")
    crs = dataset.rio.crs
    cube = dataset[bands].to_dataarray(dim="bands").rename({x: "x", y: "y", **({t: "t"} if t else {})})
    cube = cube.transpose(*(("t",) if t else ()), "bands", "y", "x")
    cube = cube.rio.set_spatial_dims(x_dim="x", y_dim="y")
    if crs is None and x in ("lon", "longitude"):
        crs = "EPSG:4326"
    if crs is None:
        raise FormatUnsuitable(reason=f"'{path}' has no CRS (no grid mapping variable); write one (CF "
                                      "grid_mapping) or use lon/lat coordinates")
    cube = cube.rio.write_crs(crs)
    cube.attrs = {}
    return cube


def _read_geojson(local: Path, path: str) -> xr.DataArray:
    try:
        document = json.loads(local.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatUnsuitable(reason=f"'{path}' is not a JSON text ({exc}), so not GeoJSON") from None
    return geojson_cube(document, process=PROCESS, parameter="paths")
