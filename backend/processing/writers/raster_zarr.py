"""Zarr: the cube as a Zarr store packed into ONE zip file (``result.zarr.zip``, application/zip).

Why zipped: a synchronous result and a batch-job asset are single downloads; a bare Zarr store is a
directory tree. The zip holds the store at its root (``.zmetadata``, ``.zgroup``, ``B04/.zarray``, … for
format 2; ``zarr.json``, … for format 3) and is written ZIP_STORED (the chunks are already compressed),
so it can be read in place without unpacking:

    xr.open_zarr(zarr.storage.ZipStore("result.zarr.zip", mode="r"))

Default: Zarr format 2 with consolidated metadata (``.zmetadata``), read by zarr-python 2 and 3, xarray,
GDAL >= 3.4 and R/stars. Option ``zarr_format: 3`` writes Zarr v3 without consolidated metadata (not part
of the v3 specification), for zarr-python >= 3 and GDAL >= 3.8.
The variables are the ones of the netCDF writer (:func:`raster_netcdf.cf_dataset`: one variable per
band, CF time, ``crs`` grid mapping), chunked 1 × chunksize × chunksize.

The store is first written to a temporary directory beside the result (``to_zarr`` streams dask
chunks), then zipped file by file; zarr-python's ``ZipStore`` is not used for writing because rewriting
metadata keys in a zip leaves duplicate entries.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from .common import WrittenResult, target
from .raster_netcdf import cf_dataset

MEDIA_TYPE = "application/zip"
FILENAME = "result.zarr.zip"

PARAMETERS = {
    "zarr_format": {"type": "integer", "enum": [2, 3], "default": 2,
                    "description": "Zarr specification version of the store."},
    "chunksize": {"type": "integer", "minimum": 16, "maximum": 4096, "default": 512,
                  "description": "Chunk width/height in pixels (chunks are 1 time step deep)."},
}


def write_zarr(value, options: dict, target_dir: Path) -> WrittenResult:
    ds = cf_dataset(value, "Zarr")
    size = options["chunksize"]
    chunks = {dim: (1 if dim == "t" else min(size, ds.sizes[dim])) for dim in ds.dims}
    ds = ds.chunk(chunks)
    for variable in ds.variables.values():
        variable.encoding.pop("chunks", None)
        variable.encoding.pop("preferred_chunks", None)
    path = target(target_dir, FILENAME)
    workdir = Path(tempfile.mkdtemp(prefix=".zarr-", dir=path.parent))
    try:
        store = workdir / "store.zarr"
        ds.to_zarr(store, mode="w", zarr_format=options["zarr_format"], consolidated=options["zarr_format"] == 2,
                   compute=True)
        tmp_zip = workdir / FILENAME
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for file in sorted(store.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(store).as_posix())
        tmp_zip.replace(path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return WrittenResult(path=path, media_type=MEDIA_TYPE, filename=FILENAME)
