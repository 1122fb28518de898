"""STAC metadata and quicklooks of finished batch-job result files.

- :func:`describe_asset`: STAC 1.0 asset fields (file, projection v1.1, raster v1.1, eo v1.1 extensions, and
  ``start_datetime``/``end_datetime`` common metadata) read from a result file's headers, never its pixels.
- :func:`make_quicklook`: an 8-bit PNG preview of a GeoTIFF result, read through its overviews.
- :func:`collection_extent`: the WGS84 bbox and time interval of a set of described assets.

Rasters are read with rasterio; only the drivers of our raster writers (GTiff, netCDF, PNG) count as
rasters, so that e.g. a CSV result is not picked up by GDAL's XYZ grid driver. A file that GDAL cannot
read gets only the file fields; a missing file is the caller's error (OSError).
Multi-variable netCDF: projection fields of the first variable only (no bands, no dates).
Extents are unions of per-asset WGS84 boxes: an asset crossing the antimeridian is not handled.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import rasterio.errors
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

from backend.processing.writers.png import scale_range, to_uint8

EXTENSIONS = [
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
]
RASTER_DRIVERS = {"GTiff", "netCDF", "PNG"}
CHUNK = 1 << 20  # bytes per read while hashing: memory stays flat for multi-GB results
DENSIFY_PTS = 21  # points per bbox edge when reprojecting: curved edges (UTM → WGS84) stay inside
# raster extension v1.1 data_type names for rasterio's dtype names that differ
DATA_TYPES = {"complex_int16": "cint16", "complex64": "cfloat32", "complex128": "cfloat64"}
STAC_DATA_TYPES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
                   "float32", "float64", "cint16", "cint32", "cfloat32", "cfloat64"}
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")
_UNREADABLE = (rasterio.errors.RasterioError, OSError, ValueError)


def describe_asset(path: Path, media_type: str, roles: list[str]) -> dict:
    """STAC asset fields (no href) of a result file; raster fields only when rasterio reads it."""
    path = Path(path)
    asset = {"type": media_type, "roles": list(roles), "title": path.name,
             "file:size": path.stat().st_size, "file:checksum": sha256_multihash(path)}
    try:
        asset.update(_raster_fields(path))
    except _UNREADABLE:
        pass  # not a raster (or a broken one): the file fields still describe it
    return asset


def sha256_multihash(path: Path) -> str:
    """file:checksum: multihash = 0x12 (sha2-256) + 0x20 (32 bytes) + digest, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return "1220" + digest.hexdigest()


def _open(path) -> rasterio.DatasetReader:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        ds = rasterio.open(path)
    if ds.driver not in RASTER_DRIVERS:
        ds.close()
        raise rasterio.errors.RasterioIOError(f"{path}: {ds.driver} is not a raster result format")
    return ds


def _raster_fields(path: Path) -> dict:
    with _open(path) as ds:
        if ds.count == 0 and ds.subdatasets:
            # multi-variable netCDF: every variable of our writer shares one grid, so the first one
            # gives the projection; bands (variables x time steps) are not described
            with _open(ds.subdatasets[0]) as sub:
                return _proj_fields(sub)
        fields = _proj_fields(ds)
        fields["raster:bands"] = [_raster_band(ds, i) for i in range(ds.count)]
        descriptions = list(ds.descriptions)
        if any(descriptions):
            fields["eo:bands"] = [{"name": d or f"band_{i + 1}"} for i, d in enumerate(descriptions)]
        times = sorted(_band_times(ds))
        if times:
            fields["start_datetime"], fields["end_datetime"] = _rfc3339(times[0]), _rfc3339(times[-1])
    return fields


def _proj_fields(ds) -> dict:
    if ds.crs is None:  # e.g. a PNG: pixel grid without georeferencing
        return {}
    epsg = ds.crs.to_epsg()
    fields = {"proj:epsg": epsg}
    if epsg is None:  # the projection extension: epsg null + a full CRS definition
        fields["proj:wkt2"] = ds.crs.to_wkt(version="WKT2_2019")
    # bbox from all four corners, so it is also right for rotated/sheared transforms
    xs, ys = zip(*(ds.transform @ (c, r) for c, r in ((0, 0), (ds.width, 0), (0, ds.height),
                                                       (ds.width, ds.height))))
    fields["proj:shape"] = [ds.height, ds.width]
    fields["proj:bbox"] = [min(xs), min(ys), max(xs), max(ys)]
    fields["proj:transform"] = list(ds.transform)[:6]  # [a, b, c, d, e, f], the extension's 6-number form
    return fields


def _raster_band(ds, index: int) -> dict:
    dtype = DATA_TYPES.get(ds.dtypes[index], ds.dtypes[index])
    band = {"data_type": dtype if dtype in STAC_DATA_TYPES else "other"}
    nodata = ds.nodatavals[index]
    if nodata is not None:
        band["nodata"] = _json_number(nodata)
    sampling = ds.tags().get("AREA_OR_POINT", "").lower()
    if sampling in ("area", "point"):
        band["sampling"] = sampling
    return band


def _json_number(value: float) -> float | int | str:
    """JSON has no NaN/inf: the raster extension spells them 'nan', 'inf', '-inf'."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if float(value).is_integer() else value


def _band_times(ds) -> set[str]:
    """Dates of the bands: our GTiff writer's per-band tag ``t``, else ``<date>/<band>`` descriptions."""
    times = set()
    for i, description in zip(ds.indexes, ds.descriptions):
        label = ds.tags(i).get("t") or (description or "").split("/")[0]
        if _ISO_TIME.match(label):
            times.add(label)
    return times


def _rfc3339(label: str) -> str:
    stamp = pd.Timestamp(label)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_quicklook(result: Path, target: Path, max_size: int = 512) -> Path | None:
    """8-bit PNG preview (grey or RGB + alpha) of a GeoTIFF, or None when the file is no GeoTIFF."""
    try:
        ds = _open(result)
    except _UNREADABLE:
        return None
    with ds:
        if ds.driver != "GTiff" or ds.count == 0:
            return None
        scale = min(1.0, max_size / max(ds.width, ds.height))  # never upscale
        width, height = max(1, round(ds.width * scale)), max(1, round(ds.height * scale))
        indexes = [1, 2, 3] if ds.count >= 3 else [1]
        # out_shape makes GDAL read the closest overview level, so a large COG costs ~ the PNG's size
        data = ds.read(indexes, out_shape=(len(indexes), height, width), resampling=Resampling.nearest,
                       masked=True)
    valid = ~np.ma.getmaskarray(data).any(axis=0)
    values = data.filled(np.nan).astype(np.float32) if data.dtype.kind == "f" else data.data.astype(np.float32)
    valid &= np.isfinite(values).all(axis=0)
    low, high = scale_range(values, valid, None, None)  # 2nd-98th percentile, as the PNG writer
    image = to_uint8(values, valid, low, high)
    alpha = valid.view(np.uint8) * np.uint8(255)
    target = Path(target)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(target, "w", driver="PNG", width=width, height=height, count=len(indexes) + 1,
                           dtype="uint8") as dst:
            dst.write(image, indexes=list(range(1, len(indexes) + 1)))
            dst.write(alpha, indexes=len(indexes) + 1)
    return target


def collection_extent(assets: dict[str, dict], fallback_bbox=None) -> dict:
    """STAC collection extent (WGS84 bbox, time interval) from described assets."""
    boxes = [box for box in map(_wgs84_bbox, assets.values()) if box is not None]
    if boxes:
        bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                max(b[3] for b in boxes)]
    else:
        # STAC requires a bbox; the whole globe is the spec's way of saying "unknown"
        bbox = list(fallback_bbox) if fallback_bbox is not None else [-180.0, -90.0, 180.0, 90.0]
    starts, ends = [], []
    for asset in assets.values():
        start, end = _asset_interval(asset)
        if start is not None:
            starts.append(start), ends.append(end)
    interval = [_rfc3339(min(starts)), _rfc3339(max(ends))] if starts else [None, None]
    return {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}}


def _wgs84_bbox(asset: dict) -> list[float] | None:
    bbox = asset.get("proj:bbox")
    if not bbox or len(bbox) != 4:
        return None
    try:
        if asset.get("proj:epsg") is not None:
            crs = CRS.from_epsg(asset["proj:epsg"])
        elif asset.get("proj:wkt2"):
            crs = CRS.from_wkt(asset["proj:wkt2"])
        else:
            return None
        return list(transform_bounds(crs, "EPSG:4326", *bbox, densify_pts=DENSIFY_PTS))
    except (rasterio.errors.RasterioError, ValueError):
        return None  # a CRS PROJ cannot handle: leave the asset out rather than fail the job


def _asset_interval(asset: dict) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The asset's start/end_datetime (or datetime), else dates parsed from its eo:bands names."""
    start = asset.get("start_datetime") or asset.get("datetime")
    end = asset.get("end_datetime") or asset.get("datetime")
    labels = [start, end] if start and end else [
        band["name"].split("/")[0] for band in asset.get("eo:bands", []) if band.get("name")]
    stamps = [pd.Timestamp(_rfc3339(label)) for label in labels if label and _ISO_TIME.match(label)]
    return (min(stamps), max(stamps)) if stamps else (None, None)
