"""GeoTIFF: one Cloud-Optimized GeoTIFF, float32, NaN as nodata, band descriptions = labels.

Two steps keep memory flat for lazy (dask) cubes of any size:
1. the cube is streamed chunk by chunk into a temporary *uncompressed tiled* GeoTIFF
   (rioxarray ``to_raster(tiled=True, lock=...)`` = ``dask.array.store``, one chunk in flight per thread);
2. GDAL's COG driver copies that file into the final COG (compression, overviews, COG layout: IFDs and
   overviews first), reading it block by block with a bounded GDAL block cache.
The temporary file is removed afterwards (it lives beside the result, so the disk needs room for
an uncompressed copy of the cube). Cubes of at most ``IN_MEMORY_BYTES`` skip the temporary file: computed
into memory, then written as the COG directly, the same bytes (~15 ms less for a 0.25 MP result).

The COG driver builds the overviews in a temporary file of its own, compressed with ZSTD (or LZW) by
default, only to decompress it again when it copies the overviews into the result. The config option
``COG_TMP_COMPRESSION=PACKBITS`` makes that round trip nearly free; the result is the same file, byte
for byte (checked with GDAL 3.10 on sizes, band counts, block sizes, compressions and all overview
resamplings), ~30 % less CPU in the COG step (~0.2 s per 9 megapixels on 2 cores). The temporary
overview file is then about as large as the overviews uncompressed (≤ 1/3 of the cube). Not ``NONE``:
with an uncompressed temporary file GDAL takes another code path, and the deeper overview levels of
sizes that do not halve evenly (e.g. 513 x 2100 px) came out with different pixels
(tests/unit/test_gtiff_cog_tmp_compression.py checks both).

Cubes with a ``t`` dimension: one label → dropped; several labels → ONE multi-band file, bands ordered
t-major (all bands of the first date, then all bands of the second, …), band descriptions
``"<date>/<band>"`` and per-band tags ``t`` and ``bands`` (one date: its ``t`` tag on every band, so the
file's STAC item keeps the date). load_stac reads both back as the cube (loading/dated_bands.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from .common import (WrittenResult, bandless_name, cube_crs, drop_single_time, labels, raster_cube, streamable,
                     target, time_label, unsuitable)

MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
FILENAME = "result.tif"
# GDAL's block cache during the writes (default 5 % of RAM). rasterio.Env takes GDAL_CACHEMAX in BYTES (it
# calls GDALSetCacheMax64), not in MB like GDAL's config option: a bare 32 meant 32 bytes, no cache at all,
# and the COG copy of multi-band cubes re-read and re-compressed partial tiles, 3-4 x slower and worse the
# wider the image (tests/benchmarks/bench_batch_memory.py). A larger cache makes the COG copy of a
# 7072² x 10-band float32 file faster still (32 MB: 42 s, 64 MB: 31 s, 128 MB: 26 s) but costs as much
# resident memory in the writing process (test_writers.py: streaming an 8000² cube grows RSS by 85 MiB).
GDAL_CACHE_MB = 32
IN_MEMORY_BYTES = 64 * 2**20

PARAMETERS = {
    "compression": {"type": "string", "enum": ["deflate", "lzw", "zstd", "none"], "default": "deflate",
                    "description": "Compression of the tiles."},
    "predictor": {"type": "boolean", "default": True,
                  "description": "Floating-point predictor (TIFF predictor 3) before compression: smaller files "
                                 "for smooth data. Ignored without compression."},
    "blocksize": {"type": "integer", "enum": [256, 512, 1024], "default": 512,
                  "description": "Tile width and height in pixels."},
    "overviews": {"type": "boolean", "default": True,
                  "description": "Add internal overviews (halving until a level fits in one tile)."},
    "overview_resampling": {"type": "string", "default": "nearest",
                            "enum": ["nearest", "average", "bilinear", "cubic", "mode"],
                            "description": "Resampling used to compute the overviews."},
}


def band_layout(cube: xr.DataArray) -> tuple[xr.DataArray, list[str], list[dict]]:
    """(cube with dims (band, y, x) in t-major order, band descriptions, per-band tags)."""
    times, bands = labels(cube, "t"), labels(cube, "bands")
    if "t" in cube.dims and "bands" in cube.dims:
        stacked = cube.stack(band=("t", "bands"), create_index=False).transpose("band", "y", "x")
        descriptions = [f"{t}/{b}" for t in times for b in bands]
        tags = [{"t": t, "bands": b} for t in times for b in bands]
    elif "t" in cube.dims:
        stacked, descriptions, tags = cube.rename(t="band"), times, [{"t": t} for t in times]
    elif "bands" in cube.dims:
        stacked, descriptions, tags = cube.rename(bands="band"), bands, [{"bands": b, **_date(cube)} for b in bands]
    else:
        stacked, descriptions, tags = cube.expand_dims("band"), [bandless_name(cube, "band_1")], [_date(cube)]
    stacked = stacked.drop_vars([c for c in stacked.coords if c not in ("x", "y", "spatial_ref")])
    return stacked, descriptions, tags


def _date(cube: xr.DataArray) -> dict:
    """The ``t`` tag of a cube whose one date was dropped: the file (and its STAC item) keeps its date."""
    if "t" in cube.coords and "t" not in cube.dims and cube.coords["t"].ndim == 0:
        return {"t": time_label(cube.coords["t"].values)}
    return {}


def write_gtiff(value, options: dict, target_dir: Path, metadata: dict[str, str] | None = None) -> WrittenResult:
    cube = streamable(drop_single_time(raster_cube(value, "GTiff")))
    crs = cube_crs(cube)
    if 1 in (cube.sizes["x"], cube.sizes["y"]) and not _has_geotransform(cube):
        # rioxarray would silently write an identity transform
        raise unsuitable("GTiff", "the pixel size of a cube 1 pixel wide or high is unknown without a "
                                  "GeoTransform on its grid mapping (rioxarray write_transform)")
    stacked, descriptions, band_tags = band_layout(cube)
    stacked = stacked.astype("float32")
    stacked.attrs = {"long_name": descriptions, "band_tags": band_tags, **(metadata or {})}  # the rest: file tags
    stacked.encoding = {}
    if crs is not None and stacked.rio.crs != crs:  # loaded cubes carry it (write_crs costs ~1 ms: pyproj to_cf)
        stacked = stacked.rio.write_crs(crs)
    stacked = stacked.rio.write_nodata(np.nan, encoded=False)

    path = target(target_dir, FILENAME)
    if stacked.size * 4 <= IN_MEMORY_BYTES:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20, COG_TMP_COMPRESSION="PACKBITS"):
            stacked.load().rio.to_raster(path, driver="COG", **_cog_options(options))
        return WrittenResult(path=path, media_type=MEDIA_TYPE, filename=FILENAME)
    tmp = path.with_name(path.name + ".tmp.tif")
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20, COG_TMP_COMPRESSION="PACKBITS"):
            # band-interleaved: a chunk of one band is whole tiles (pixel-interleaved tiles would be rewritten
            # once per band), and the COG driver's overviews read it 2 x faster; the COG is the same file
            stacked.rio.to_raster(tmp, driver="GTiff", tiled=True, blockxsize=512, blockysize=512, interleave="band",
                                  compress="NONE", BIGTIFF="IF_SAFER", lock=threading.Lock(), compute=True)
            rasterio.shutil.copy(tmp, path, driver="COG", **_cog_options(options))
    finally:
        tmp.unlink(missing_ok=True)
    return WrittenResult(path=path, media_type=MEDIA_TYPE, filename=FILENAME)


def _has_geotransform(cube: xr.DataArray) -> bool:
    name = cube.rio.grid_mapping
    return name in cube.coords and bool(cube.coords[name].attrs.get("GeoTransform"))


def _cog_options(options: dict) -> dict:
    compression = options["compression"]
    cog = {
        "COMPRESS": "NONE" if compression == "none" else compression.upper(),
        "BLOCKSIZE": str(options["blocksize"]),
        "OVERVIEWS": "AUTO" if options["overviews"] else "NONE",
        "RESAMPLING": options["overview_resampling"].upper(),
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
    }
    if compression != "none" and options["predictor"]:
        cog["PREDICTOR"] = "FLOATING_POINT"
    return cog
