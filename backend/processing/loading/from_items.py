"""Cubes from STAC items that were found elsewhere (load_stac): the same rules as load_collection.

    ref = ItemsRef(label, stac_id, StaticItems(items))          # items read already (static STAC)
    ref = ItemsRef(label, stac_id, ApiItems(pystac_client))      # items by STAC API item search
    metadata = metadata_for(collection_dict_or_None, sample_items)
    cube = load_items_cube(ref, metadata, spatial_extent, temporal_extent, bands, properties,
                           check_href=...)

Selection (bbox, left-closed interval, property predicates), band resolution, the output grid,
nodata -> NaN and scale/offset all come from the load_collection code (cube.plan_load, odc_load.
load_cube), so a load_stac of a collection equals load_collection of the same collection.

Differences: bands may also be named by asset key (it resolves to the asset's band); when the
collection has no band metadata (or there is no collection: a single item), the bands are those of the
items' data assets (single-band ones, and multi-band ``data`` files whose bands are named, such as a
job's result; not RGB previews). Before any pixel is read, every asset href the load will open is made
absolute and passed to ``check_href`` (which may refuse it: asset URLs are user input too); the pixels are
then read only from the addresses that check accepted, never through GDAL's own HTTP client
(loading/guarded_reads.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pystac
import xarray as xr

from apicore import errors

from backend.catalog.metadata import band_metadata
from backend.processing.fetching.policy import DEFAULT_TIMEOUT
from backend.processing.loading.bands import all_bands, with_common_names
from backend.processing.loading.cube import _check_chunk_size, plan_load
from backend.processing.loading.extents import format_time
from backend.processing.loading.guarded_reads import GuardedRioDriver
from backend.processing.loading.item_search import item_time_range
from backend.processing.loading.odc_load import load_cube

NON_DATA_ROLES = {"thumbnail", "overview", "metadata", "visual", "legend", "browse"}
RASTER_TYPES = ("image/tiff", "image/jp2", "image/vnd.stac.geotiff", "application/x-hdf", "application/x-netcdf")
# Multi-variable containers: GDAL opens them as subdatasets with no band of their own, so a band read fails.
CONTAINER_TYPES = ("application/x-hdf", "application/x-netcdf", "application/netcdf")


class StaticItems:
    """Items that were read already; filtered in Python like a static catalog's."""

    def __init__(self, items: Iterable[pystac.Item]):
        self._items = list(items)

    def items(self, stac_id: str) -> list[pystac.Item]:
        return list(self._items)


class ApiItems:
    """A STAC API (pystac-client Client): items by item search, like a configured API source."""

    def __init__(self, client: Any):
        self.client = client


@dataclass(frozen=True)
class ItemsRef:
    openeo_id: str  # how messages name the data (e.g. "the STAC collection at <url>")
    stac_id: str  # the STAC collection id to search (API); unused for StaticItems
    source: StaticItems | ApiItems


# --- metadata ------------------------------------------------------------------------------------


def has_band_metadata(collection: dict) -> bool:
    return bool(band_metadata(collection) or collection.get("cube:dimensions", {}).get("bands", {}).get("values")
                or collection.get("item_assets"))


def _is_data_asset(asset: dict) -> bool:
    roles = set(asset.get("roles") or [])
    if roles & NON_DATA_ROLES and "data" not in roles:
        return False
    bands = asset.get("eo:bands") or asset.get("bands") or asset.get("raster:bands") or []
    if len(bands) > 1:  # multi-band files: only data with named bands (a job's result), not RGB previews
        return "data" in roles and len(_named_bands(asset)) == len(bands)
    return bool(bands) or "data" in roles or str(asset.get("type", "")).startswith(RASTER_TYPES)


def _named_bands(asset: dict) -> list[dict]:
    return [dict(b) for b in asset.get("eo:bands") or asset.get("bands") or [] if isinstance(b, dict) and b.get("name")]


def items_band_table(items: Sequence[pystac.Item]) -> tuple[list[dict], dict[str, dict]]:
    """Bands and ``item_assets`` from the items' data assets (single-band, or multi-band with named bands)."""
    assets: dict[str, dict] = {}
    for item in items:
        for key, asset in item.assets.items():
            if key not in assets:
                fields = asset.to_dict()
                fields.pop("href", None)
                if _is_data_asset(fields):
                    assets[key] = fields
    bands = []
    for key, asset in assets.items():
        bands += _named_bands(asset) or [{"name": key}]  # a multi-band file gives all its bands
    return bands, assets


def _extent(items: Sequence[pystac.Item]) -> dict:
    boxes = [item.bbox for item in items if item.bbox]
    bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[-2] for b in boxes),
            max(b[-1] for b in boxes)] if boxes else [-180, -90, 180, 90]
    spans = [s for s in (item_time_range(item) for item in items) if s]
    interval = [format_time(min(s[0] for s in spans)), format_time(max(s[1] for s in spans))] if spans else [None, None]
    return {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}}


def metadata_for(collection: dict | None, sample_items: Sequence[pystac.Item]) -> dict:
    """Collection-like metadata for band resolution and "no data" messages.

    A collection with band metadata is used as it is (exactly what load_collection sees); otherwise
    the bands come from the sample items' assets, and a missing extent from the items."""
    metadata = dict(collection or {})
    if not has_band_metadata(metadata):
        bands, assets = items_band_table(sample_items)
        metadata["summaries"] = {**(metadata.get("summaries") or {}), "eo:bands": bands}
        metadata["item_assets"] = assets
    if not metadata.get("extent") and sample_items:
        metadata["extent"] = _extent(sample_items)
    return metadata


def band_names(metadata: dict, requested: Any) -> Any:
    """Requested bands with asset keys replaced by their band's name (names and common names stay)."""
    if not isinstance(requested, (list, tuple)):
        return requested
    bands = all_bands(metadata)
    names = {b.name for b in bands}
    commons = {b.common_name for b in bands}
    by_asset: dict[str, str] = {}
    for band in bands:
        by_asset.setdefault(band.asset, band.name)
    return [name if not isinstance(name, str) or name in names or name in commons else by_asset.get(name, name)
            for name in requested]


# --- loading -------------------------------------------------------------------------------------


def load_items_cube(ref: ItemsRef, metadata: dict, spatial_extent: Any, temporal_extent: Any, bands: Any,
                    properties: dict | None = None, *, check_href: Callable[[str], Any],
                    chunk_size: int | None = None, max_values: int | None = None, on_items=None,
                    read_timeout: float = DEFAULT_TIMEOUT) -> xr.DataArray:
    """Lazy (t, bands, y, x) float32 cube, NaN nodata, coordinate ``common_name`` along ``bands``; raises
    load_collection's openEO errors (also ProcessGraphComplexity above ``max_values`` values, before the
    cube is built). ``on_items(items)``: told the items read (provenance). ``check_href(href)`` returns
    the checked Target of an asset: its pixels are read from those addresses only (guarded_reads.py)."""
    _check_chunk_size(chunk_size)
    plan = plan_load(ref, metadata, spatial_extent, temporal_extent, band_names(metadata, bands), properties)
    plan.check_size(max_values, "load_stac")
    if on_items is not None:
        on_items(plan.items)
    pins = {}
    for item in plan.items:
        for band in plan.bands:
            asset = item.assets.get(band.asset)
            if asset is None:
                continue
            href = asset.get_absolute_href() or asset.href
            pins[href] = check_href(href)
            _check_readable(asset, band.asset)
            asset.href = href
    reads = GuardedRioDriver(pins, timeout=read_timeout)  # pixels only from the checked addresses
    return with_common_names(load_cube(plan.items, plan.bands, plan.geobox, chunk_size=chunk_size, driver=reads),
                             plan.bands)


def _check_readable(asset: pystac.Asset, key: str) -> None:
    """Refuse netCDF/HDF before any read (the guarded driver would refuse them later, less helpfully)."""
    media_type = str(asset.media_type or "").split(";")[0].strip().lower()
    if media_type in CONTAINER_TYPES:
        raise errors.ProcessParameterInvalid(
            process="load_stac", parameter="url",
            reason=f"asset '{key}' is {media_type} (netCDF/HDF), which load_stac does not read yet; it reads "
                   "GeoTIFF (COG) and JPEG 2000 assets: save the job's result as GTiff to chain it")
