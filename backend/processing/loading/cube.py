"""load_collection's data part: validate the arguments, find items, choose the grid, load lazily."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import pystac
import xarray as xr
from odc.geo.geobox import GeoBox
from shapely.geometry import Polygon, box

from backend.processing.limits import check_deadline, check_values
from backend.processing.loading import parsed_items
from backend.processing.loading.bands import Band, resolve_bands, with_common_names
from backend.processing.loading.extents import (
    UTC, WGS84, BBox, TimeInterval, bbox_polygon, invalid, normalize_bbox, normalize_interval,
    parse_instant)
from backend.processing.loading.grid import STAGE as GRID_STAGE
from backend.processing.loading.grid import choose_geobox
from backend.processing.loading.item_search import any_item, check_properties, find_items
from backend.processing.loading.odc_load import load_cube, nominal_time


@dataclass
class LoadPlan:
    bands: list[Band]
    items: list[pystac.Item]
    geobox: GeoBox
    dates: int

    @property
    def sizes(self) -> dict[str, int]:
        """The cube's dimensions, known before any graph is built."""
        height, width = self.geobox.shape.yx
        return {"t": self.dates, "bands": len(self.bands), "y": int(height), "x": int(width)}

    @property
    def values(self) -> int:
        return math.prod(self.sizes.values())

    def check_size(self, max_values: int | None, process_id: str) -> None:
        """Refuse the load from the grid alone: a huge grid must never reach odc-stac, whose lazy graph
        (one task per chunk) would take minutes and gigabytes to build."""
        check_values(self.values, self.sizes, max_values, process_id)


def _check_chunk_size(chunk_size: Any) -> int | None:
    if chunk_size is None:  # the context's size (odc_load.load_chunk_size)
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return chunk_size


def plan_load(ref, metadata: dict, spatial_extent, temporal_extent, bands, properties=None, *,
              target_crs=None, target_resolution=None) -> LoadPlan:
    """Everything but the pixels: validation, item search, output grid. Raises openEO errors."""
    chosen = resolve_bands(metadata, bands)
    bbox = normalize_bbox(spatial_extent)
    interval = normalize_interval(temporal_extent)
    filters = check_properties(properties)
    area = bbox_polygon(bbox, WGS84) if bbox is not None else None
    found = find_items(ref, area, interval, filters)
    if not found.items:
        raise _no_data(ref, metadata, bbox, area, interval, found.before_properties)
    parsed = parsed_items.parse(found.items, lambda: check_deadline(GRID_STAGE))
    geobox = choose_geobox(parsed, bbox, area, target_crs, target_resolution)
    check_deadline(GRID_STAGE)
    ((mid_lon, _),) = geobox.extent.centroid.to_crs("epsg:4326").points
    dates = len({p.solar_date_at(mid_lon).date() for p in parsed})  # odc-stac's solar-day groups
    return LoadPlan(chosen, found.items, geobox, dates)


def load_collection_cube(ref, collection_metadata: dict, spatial_extent: dict | None,
                         temporal_extent: list | None, bands: list[str] | None,
                         properties: dict | None = None, *, chunk_size: int | None = None, target_crs=None,
                         target_resolution=None, resampling: str = "nearest",
                         max_values: int | None = None, on_items=None) -> xr.DataArray:
    """The collection as a lazy (dask) DataArray (t, bands, y, x), float32, nodata as NaN, with the
    bands' common names as coordinate ``common_name`` along ``bands`` (see bands.py).

    ``ref``: a CollectionRef (static catalog or STAC API source). ``properties``: {property:
    predicate(value) -> bool}. ``target_crs``/``target_resolution`` override the grid rules of
    grid.py; ``resampling`` applies to non-classification bands off the native grid. A cube of more
    than ``max_values`` values is refused (ProcessGraphComplexity) before it is built.
    """
    _check_chunk_size(chunk_size)
    with parsed_items.shared():  # the plan's parsed items serve the load too
        plan = plan_load(ref, collection_metadata, spatial_extent, temporal_extent, bands, properties,
                         target_crs=target_crs, target_resolution=target_resolution)
        plan.check_size(max_values, "load_collection")
        if on_items is not None:  # the items read, for the result's provenance
            on_items(plan.items)
        cube = load_cube(plan.items, plan.bands, plan.geobox, chunk_size=chunk_size, resampling=resampling)
    return with_common_names(cube, plan.bands)


def estimate_load(ref, collection_metadata: dict, spatial_extent: dict | None, temporal_extent: list | None,
                  bands: list[str] | None, properties: dict | None = None, *, target_crs=None,
                  target_resolution=None) -> dict:
    """Dry run: searches items and computes the grid, reads no pixels. Raises the same errors."""
    plan = plan_load(ref, collection_metadata, spatial_extent, temporal_extent, bands, properties,
                     target_crs=target_crs, target_resolution=target_resolution)
    height, width = plan.geobox.shape.yx
    per_date = int(height) * int(width)
    return {
        "items": len(plan.items),
        "dates": plan.dates,
        "bands": [b.name for b in plan.bands],
        "shape": [plan.dates, len(plan.bands), int(height), int(width)],
        "crs": crs_label_of(plan.geobox),
        "resolution": [abs(plan.geobox.resolution.x), abs(plan.geobox.resolution.y)],
        "pixels_per_band_per_date": per_date,
        "total_pixels": per_date * plan.dates * len(plan.bands),
        "bytes": per_date * plan.dates * len(plan.bands) * 4,  # float32
        "first_date": str(min(nominal_time(i) for i in plan.items))[:10],
        "last_date": str(max(nominal_time(i) for i in plan.items))[:10],
    }


def crs_label_of(geobox: GeoBox) -> str:
    epsg = geobox.crs.epsg
    return f"EPSG:{epsg}" if epsg else geobox.crs.to_wkt()


# --- "no data" diagnostics -----------------------------------------------------------------------


def _collection_area(metadata: dict) -> tuple[list[Polygon], str]:
    boxes = (metadata.get("extent", {}).get("spatial", {}) or {}).get("bbox") or []
    parts = boxes[1:] if len(boxes) > 1 else boxes  # STAC: [union, *sub-extents]
    polygons = [box(b[0], b[1], b[3], b[4]) if len(b) == 6 else box(*b) for b in parts]
    text = "; ".join(f"west={b[0]:g}, south={b[1]:g}, east={b[-2]:g}, north={b[-1]:g}" for b in parts)
    return polygons, (text + " (EPSG:4326)") if text else "an unknown area"


def _collection_interval(metadata: dict) -> tuple[TimeInterval | None, str]:
    intervals = (metadata.get("extent", {}).get("temporal", {}) or {}).get("interval") or []
    if not intervals or not intervals[0]:
        return None, "an unknown period"
    start, end = intervals[0]
    text = f"{start or '..'} to {end or '..'}"
    try:
        start_t, end_t = parse_instant(start), parse_instant(end)
    except Exception:
        return None, text
    return TimeInterval(start_t, None if end_t is None else end_t.replace(microsecond=999999)), text


def _no_data(ref, metadata: dict, bbox: BBox | None, area: Polygon | None, interval: TimeInterval | None,
             before_properties: int):
    polygons, area_text = _collection_area(metadata)
    coverage, time_text = _collection_interval(metadata)
    covers = f"the collection covers {area_text}, {time_text}"
    where = f"the extent {bbox.describe()}" if bbox is not None else "the whole collection"
    when = f"the interval {interval.describe()}" if interval is not None else "any time"
    if before_properties:
        return invalid("properties", f"no data: {before_properties} item(s) of {ref.openeo_id} match the spatial "
                                     "and temporal extent, but none passes the property filters; relax them")
    if area is not None and polygons and not any(p.intersects(area) for p in polygons):
        return invalid("spatial_extent", f"no data: {where} lies outside collection {ref.openeo_id}; {covers}")
    if interval is not None and coverage is not None and not interval.overlaps(
            coverage.start or dt.datetime.min.replace(tzinfo=UTC), coverage.end or dt.datetime.max.replace(tzinfo=UTC)):
        return invalid("temporal_extent", f"no data: {when} lies outside collection {ref.openeo_id}; {covers}")
    if area is not None and not any_item(ref, area=area):
        return invalid("spatial_extent", f"no data: no items cover {where} at any time; the items of "
                                         f"{ref.openeo_id} do not fill their extent; {covers}")
    return invalid("temporal_extent", f"no data: collection {ref.openeo_id} has no acquisitions in {when} "
                                      f"over {where} (the end date is excluded); {covers}")
