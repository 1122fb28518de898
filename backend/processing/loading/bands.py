"""Band names: resolve requested names/common names to canonical bands and their STAC assets.

The collection's ``summaries.eo:bands`` (or STAC 1.1 ``bands``, or ``item_assets``) define the
bands; a requested name matches a band ``name`` first, then a ``common_name``. Labels in the cube
are the canonical names, in the requested order. A band is read from the asset with the same key,
or else from the ``item_assets`` entry whose ``eo:bands`` lists it.

Loaded cubes carry each band's common name as the non-index coordinate ``common_name`` along
``bands`` ("" where the band has none): openeo-processes-dask's ``ndvi`` and our band processes
(processes/common_names.py) resolve ``nir``, ``red`` ... through it, as the openEO processes demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pystac
import xarray as xr

from backend.catalog.metadata import band_metadata
from backend.processing.loading.extents import invalid

CATEGORICAL_TYPES = {"uint8", "int8"}
COMMON_NAME = "common_name"  # the coordinate along ``bands`` that holds the bands' common names


@dataclass(frozen=True)
class Band:
    name: str  # canonical band name (cube label)
    asset: str  # asset key in the items
    categorical: bool  # classification band: always nearest resampling, never scaled by metadata
    common_name: str | None = None  # eo common name (``red``, ``nir`` ...), None if the band has none


def _collection_bands(metadata: dict) -> list[dict]:
    bands = band_metadata(metadata)
    if bands:
        return bands
    values = metadata.get("cube:dimensions", {}).get("bands", {}).get("values")
    if values:
        return [{"name": v} for v in values]
    return [{"name": key} for key in metadata.get("item_assets", {})]


def _asset_for(name: str, item_assets: dict) -> str:
    if name in item_assets or not item_assets:
        return name
    for key, asset in item_assets.items():
        for band in asset.get("eo:bands") or asset.get("bands") or []:
            if band.get("name") == name:
                return key
    return name


def _raster_band(asset: dict) -> dict:
    raster = asset.get("raster:bands") or []
    if raster:
        return raster[0]
    bands = asset.get("bands") or []  # STAC 1.1: raster fields inline, prefixed
    return {k.removeprefix("raster:"): v for k, v in bands[0].items()} if bands else {}


def _is_categorical(band: dict, asset: dict) -> bool:
    raster = _raster_band(asset)
    if any(k.startswith("classification:") for k in (*band, *asset, *raster)):
        return True
    unscaled = raster.get("scale") in (None, 1) and raster.get("offset") in (None, 0)
    return unscaled and raster.get("data_type", band.get("data_type")) in CATEGORICAL_TYPES


def all_bands(metadata: dict) -> list[Band]:
    item_assets = metadata.get("item_assets", {}) or {}
    result = []
    for band in _collection_bands(metadata):
        asset_key = _asset_for(band["name"], item_assets)
        common = band.get("common_name")
        result.append(Band(band["name"], asset_key, _is_categorical(band, item_assets.get(asset_key, {})),
                           common if isinstance(common, str) and common else None))
    return result


def resolve_bands(metadata: dict, requested: list[str] | None) -> list[Band]:
    """Bands in the requested order; None means all. Unknown or repeated names are errors."""
    available = all_bands(metadata)
    if requested is None:
        return available
    if isinstance(requested, str) or not isinstance(requested, (list, tuple)):
        raise invalid("bands", "give a list of band names, e.g. [\"B04\", \"B08\"], or null for all bands")
    if not requested:
        raise invalid("bands", "the list of bands is empty; give at least one band name, or null for all bands")
    by_name = {b.name: b for b in available}
    by_common: dict[str, Band] = {}
    for band in available:
        if band.common_name and band.common_name not in by_common:
            by_common[band.common_name] = band
    result: list[Band] = []
    for name in requested:
        band = (by_name.get(name) or by_common.get(name)) if isinstance(name, str) else None
        if band is None:
            names = ", ".join(b.name for b in available)
            commons = ", ".join(sorted(by_common))
            raise invalid("bands", f"band {name!r} does not exist; available: {names}"
                                   + (f" (common names: {commons})" if commons else ""))
        if band in result:
            raise invalid("bands", f"band {name!r} is requested twice (as {band.name!r}); list each band once")
        result.append(band)
    return result


def with_common_names(cube: xr.DataArray, bands: list[Band]) -> xr.DataArray:
    """The cube with the ``common_name`` coordinate along ``bands`` (in the cube's band order)."""
    return cube.assign_coords({COMMON_NAME: ("bands", common_names(bands))})


def common_names(bands: list[Band]) -> np.ndarray:
    """Common names as a fixed-width unicode array ("" for none), the form processes-dask expects."""
    return np.array([band.common_name or "" for band in bands], dtype=str)


@dataclass(frozen=True)
class RasterInfo:
    nodata: float | None
    scale: float
    offset: float


def raster_info(item: pystac.Item, band: Band) -> RasterInfo:
    """nodata/scale/offset of a band in one item (from ``raster:bands``); categorical bands are not scaled."""
    asset = item.assets.get(band.asset)
    fields: dict[str, Any] = _raster_band(asset.to_dict()) if asset is not None else {}
    nodata = fields.get("nodata")
    if isinstance(nodata, str):  # "nan", "inf", "-inf" are allowed by the raster extension
        nodata = float(nodata)
    if band.categorical:
        return RasterInfo(nodata, 1.0, 0.0)
    scale, offset = fields.get("scale"), fields.get("offset")
    return RasterInfo(nodata, 1.0 if scale is None else float(scale), 0.0 if offset is None else float(offset))
