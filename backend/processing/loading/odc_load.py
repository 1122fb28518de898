"""Lazy pixel loading with odc-stac, then decoding to an openEO float32 cube.

* Items of one solar day are mosaicked (``groupby="solar_day"``; first valid pixel wins, items
  sorted by time then id); the ``t`` label is the earliest acquisition time of the day (UTC).
* Resampling: "nearest" unless the caller asks otherwise; classification bands (SCL etc.) are
  always nearest. On the native grid nothing is resampled at all (pixels are copied).
* Decoding, per band and per date: source nodata (the band's own ``raster:bands`` nodata) -> NaN,
  then ``value * scale + offset`` from ``raster:bands`` (computed in float64, stored as float32,
  so integers can never wrap around). Classification bands are not scaled. odc-stac does
  neither of these (it keeps raw values and only records nodata in attrs).
* Result: DataArray (t, bands, y, x), float32, band labels = canonical names, CRS written with
  rioxarray (``spatial_ref`` coordinate, also understood by odc-geo), attrs ``{"nodata": nan}``.
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache, partial
from collections.abc import Iterator, Sequence

import dask.array as dsa
import numpy as np
import odc.stac
import pystac
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from odc.geo.geobox import GeoBox

from backend.processing.loading import footprints, parsed_items
from backend.processing.loading.bands import Band, RasterInfo, raster_info

footprints.install()
parsed_items.install()
log = logging.getLogger(__name__)

RENAME = {"time": "t", "latitude": "y", "longitude": "x"}
DEFAULT_CHUNK_SIZE = 2048  # x/y size of the loaded cube's chunks (one date per chunk)
_chunk_target: ContextVar[int | None] = ContextVar("load_chunk_target", default=None)


@contextmanager
def load_chunk_size(target: int) -> Iterator[None]:
    """Loads in this context (thread) that name no chunk size are chunked around ``target`` px (see
    :func:`balanced_chunk`). Batch jobs choose it from their Dask workers' memory
    (``backend.jobs.cluster.chunk_size_for``); elsewhere chunks are DEFAULT_CHUNK_SIZE px."""
    token = _chunk_target.set(int(target))
    try:
        yield
    finally:
        _chunk_target.reset(token)


def balanced_chunk(length: int, target: int) -> int:
    """Equal chunks of at most 1.25 x ``target`` px along a side of ``length`` px, instead of target-sized
    chunks and a thin remainder: every chunk costs file opens and scheduling, so a 2237 px side in
    1024 + 1024 + 189 px chunks took ~30 % more CPU than in 1119 + 1118 (bench_batch_memory.py)."""
    parts = max(1, -(-length // int(target * 1.25)))
    return -(-length // parts)


def nominal_time(item: pystac.Item) -> np.datetime64:
    """The timestamp odc-stac labels an item with (datetime, else start_datetime), naive UTC."""
    t = item.datetime
    if t is None:
        t = pystac.utils.str_to_datetime(item.properties["start_datetime"])
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return np.datetime64(t, "ns")


def _per_date(items: Sequence[pystac.Item], band: Band, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scale and offset for each loaded date (from the item that gave the date its label)."""
    infos: dict[np.datetime64, RasterInfo] = {}
    for item in items:  # sorted by (time, id): the first item at a timestamp is odc's group head
        infos.setdefault(nominal_time(item), raster_info(item, band))
    distinct = {(i.scale, i.offset) for i in infos.values()}
    if len(distinct) > 1:
        log.info("band %s: scale/offset vary between items: %s", band.name, sorted(distinct))
    fallback = next(iter(infos.values()))
    chosen = [infos.get(np.datetime64(t, "ns"), fallback) for t in times]
    return (np.array([i.scale for i in chosen], dtype=np.float64),
            np.array([i.offset for i in chosen], dtype=np.float64))


def _decode_block(block: np.ndarray, *, nodata, scales: np.ndarray, offsets: np.ndarray,
                  block_info=None) -> np.ndarray:
    t0, t1 = block_info[0]["array-location"][0] if block_info else (0, block.shape[0])
    scale, offset = scales[t0:t1], offsets[t0:t1]
    out = np.empty(block.shape, dtype=np.float32)
    if len(set(scale.tolist())) == 1 and len(set(offset.tolist())) == 1:  # one date per block: the usual case
        _scale_into(block, float(scale[0]), float(offset[0]), out)
    else:
        for i in range(block.shape[0]):
            _scale_into(block[i], float(scale[i]), float(offset[i]), out[i])
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        out[block == nodata] = np.nan
    return out


def _scale_into(block: np.ndarray, scale: float, offset: float, out: np.ndarray) -> None:
    """out = block * scale + offset, computed in float64 and rounded once to float32 (no int wrap-around)."""
    if scale == 1.0 and offset == 0.0:
        out[...] = block
    elif offset == 0.0:
        np.multiply(block, scale, out=out, dtype=np.float64, casting="unsafe")
    else:
        out[...] = block.astype(np.float64) * scale + offset


def decode(raw: xr.DataArray, nodata, scales: np.ndarray, offsets: np.ndarray):
    """The decoded float32 values of one band's (t, y, x) array: a dask array for a dask array."""
    data = raw.data
    if isinstance(data, dsa.Array):
        # meta given: else Dask calls the function on an empty block to find out (~1 ms per band)
        return data.map_blocks(partial(_decode_block, nodata=nodata, scales=scales, offsets=offsets),
                               dtype=np.float32, meta=np.empty((0,) * data.ndim, np.float32))
    return _decode_block(np.asarray(data), nodata=nodata, scales=scales, offsets=offsets)


def odc_band_key(items: Sequence[pystac.Item], band: Band) -> str:
    """odc-stac's name of a band: its asset key, or ``<asset>.<n>`` for band n of a multi-band asset
    (a bare key would give band 1 for every band of that file)."""
    for item in items:
        asset = item.assets.get(band.asset)
        if asset is not None:
            names = [b.get("name") if isinstance(b, dict) else None
                     for b in asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []]
            return f"{band.asset}.{names.index(band.name) + 1}" if len(names) > 1 and band.name in names \
                else band.asset
    return band.asset


GRID_MAPPING = "spatial_ref"


@lru_cache(maxsize=64)
def _grid_mapping_attrs(crs_text: str) -> dict:
    """rioxarray's CF attributes of a CRS (``write_crs`` on a 1 x 1 template): pyproj's to_cf took ~1 ms of
    every load."""
    template = xr.DataArray(np.zeros((1, 1), np.float32), dims=("y", "x")).rio.write_crs(crs_text)
    return dict(template.coords[GRID_MAPPING].attrs)


def grid_mapping(geobox: GeoBox) -> xr.Variable:
    """The ``spatial_ref`` coordinate rioxarray's write_crs + write_transform give the geobox's grid: the
    GeoTransform carries the pixel size also for a cube 1 pixel wide or high."""
    epsg = geobox.crs.epsg
    attrs = dict(_grid_mapping_attrs(f"EPSG:{epsg}" if epsg else geobox.crs.to_wkt()))
    attrs["GeoTransform"] = " ".join(str(value) for value in geobox.affine.to_gdal())
    return xr.Variable((), 0, attrs)


def load_cube(items: Sequence[pystac.Item], bands: Sequence[Band], geobox: GeoBox, *,
              chunk_size: int | None = None, resampling: str = "nearest", driver=None) -> xr.DataArray:
    """``chunk_size``: x/y chunks of exactly this size; None: around the context's target
    (:func:`load_chunk_size`), else DEFAULT_CHUNK_SIZE. ``driver``: odc-stac's reader driver (None: its
    rasterio default; load_stac's guarded reads: guarded_reads.GuardedRioDriver)."""
    height, width = (int(n) for n in geobox.shape.yx)
    target = _chunk_target.get()
    if chunk_size is None and target is not None:
        chunks = {"x": balanced_chunk(width, target), "y": balanced_chunk(height, target)}
    else:
        chunks = {"x": chunk_size or DEFAULT_CHUNK_SIZE, "y": chunk_size or DEFAULT_CHUNK_SIZE}
    keys = [odc_band_key(items, b) for b in bands]
    resampling = {"near": "nearest"}.get(resampling, resampling)  # openEO spelling of nearest
    ds = odc.stac.load(
        items, bands=keys, geobox=geobox, groupby="solar_day",
        chunks={**chunks, "time": 1},
        resampling={key: "nearest" if b.categorical else resampling for key, b in zip(keys, bands)},
        **({"driver": driver} if driver is not None else {}),
    )
    times = ds["time"].values
    layers = []
    for band, key in zip(bands, keys):
        raw = ds[key]
        scales, offsets = _per_date(items, band, times)
        layers.append(decode(raw, raw.attrs.get("nodata"), scales, offsets))
    stack = dsa.stack if isinstance(layers[0], dsa.Array) else np.stack
    # one DataArray built from the stacked bands: xr.concat + transpose cost ~2 ms of a small request
    dims = [RENAME.get(d, d) for d in ds[keys[0]].dims]  # (t, y, x)
    coords = {new: (new, ds[name].values, ds[name].attrs) for name, new in zip(ds[keys[0]].dims, dims)}
    cube = xr.DataArray(stack(layers, axis=1), dims=(dims[0], "bands", *dims[1:]),
                        coords={**coords, "bands": [b.name for b in bands], GRID_MAPPING: grid_mapping(geobox)},
                        attrs={"nodata": np.nan})
    cube.encoding["grid_mapping"] = GRID_MAPPING
    cube.name = None  # xarray names a DataArray after its dask array ("stack-<token>")
    return cube
