"""The one pixel grid (GeoBox) a load lands on.

Rules (overridable with ``target_crs`` / ``target_resolution``):

* CRS: the native CRS of the selected items. When they come in several CRSs (e.g. neighbouring
  UTM zones), the CRS whose items cover the largest part of the requested extent wins, the
  coverage summed over all items (so: area x number of dates, in WGS84 degrees^2); ties go to
  the CRS of the earliest item. Without a spatial extent, the items' whole footprints count.
* Resolution: the finest resolution of ANY band of the collection in that CRS (10 m for
  Sentinel-2, also when only 20 m bands are requested), so separate loads of one collection
  over one extent always share a grid (mask/merge_cubes work without resampling).
* Alignment: pixel edges on the native pixel grid of the items (no half-pixel shifts, so native
  pixels are copied unresampled); edges at multiples of the resolution for a foreign CRS.
* Extent: the requested bbox reprojected (densified edges) to the grid CRS and snapped outwards
  to whole pixels; without a bbox, the union of the items' footprints.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from odc.geo import resxy_, xy_
from odc.geo.crs import CRS as OdcCRS
from odc.geo.geobox import GeoBox
from odc.geo.overlap import compute_output_geobox
from odc.stac import ParsedItem
from pyproj import CRS
from shapely.geometry import Polygon

from apicore import errors
from backend.processing.limits import check_deadline
from backend.processing.loading.extents import BBox, bbox_bounds_in, parse_crs

STAGE = "the choice of the output grid"


def _item_crs(p: ParsedItem) -> CRS:
    return _item_crs_and_wkt(p)[0]


def _item_crs_and_wkt(p: ParsedItem) -> tuple[CRS, str]:
    crs = p.crs()
    if crs is None:
        raise errors.OpenEOError(f"STAC item {p.id!r} has no projection metadata (proj:code or proj:epsg, "
                                 "proj:shape, proj:transform), so its pixels cannot be placed")
    return _pyproj_crs(crs)


@lru_cache(maxsize=256)
def _pyproj_crs(crs: OdcCRS) -> tuple[CRS, str]:
    """(pyproj's CRS, its WKT) of odc's CRS, built once per CRS: parsing the WKT took ~0.35 ms per item and
    call, most of a small request's grid choice (pyproj CRS objects are immutable, shared between threads)."""
    built = CRS.from_user_input(crs.to_wkt())
    return built, built.to_wkt()


def native_crs(parsed: Sequence[ParsedItem], area: Polygon | None) -> CRS:
    """The CRS covering most of the extent (see module doc); ties -> CRS of the earliest item."""
    weights: dict[str, float] = {}
    crs_of: dict[str, CRS] = {}
    for p in _watched(parsed):  # parsed items come sorted by (time, id): dict order = first appearance
        crs, key = _item_crs_and_wkt(p)
        crs_of.setdefault(key, crs)
        geom = p.geometry.geom if p.geometry is not None else None
        covered = 0.0
        if geom is not None:
            covered = geom.intersection(area).area if area is not None else geom.area
        weights[key] = weights.get(key, 0.0) + covered
    best = max(weights.values())
    key = next(k for k, w in weights.items() if w >= best * (1 - 1e-9))
    return crs_of[key]


def _watched(parsed: Sequence[ParsedItem]) -> Iterator[ParsedItem]:
    """The items, with the request's deadline checked before each (thousands of items take seconds)."""
    for p in parsed:
        check_deadline(STAGE)
        yield p


def _same(a: CRS, b: CRS) -> bool:
    return a == b or (a.to_epsg() is not None and a.to_epsg() == b.to_epsg())


def _fraction(v: float) -> float:
    frac = v % 1.0
    return 0.0 if min(frac, 1.0 - frac) < 1e-6 else frac


def _resolution(value: Any) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        rx = ry = float(value)
    elif isinstance(value, Sequence) and len(value) == 2:
        rx, ry = (abs(float(v)) for v in value)
    else:
        raise ValueError(f"target_resolution must be a number or (x, y), got {value!r}")
    if not (rx > 0 and ry > 0 and math.isfinite(rx) and math.isfinite(ry)):
        raise ValueError(f"target_resolution must be positive, got {value!r}")
    return rx, ry


def choose_geobox(parsed: Sequence[ParsedItem], bbox: BBox | None, area: Polygon | None,
                  target_crs: Any = None, target_resolution: Any = None) -> GeoBox:
    native = native_crs(parsed, area)
    out_crs = parse_crs(target_crs, "target_crs") if target_crs is not None else native
    in_out_crs = [p for p in _watched(parsed) if _same(_item_crs(p), out_crs)]
    finest = None
    if in_out_crs:  # finest band grid of the items already in the output CRS
        finest = min((g for p in in_out_crs for g in p.geoboxes()),
                     key=lambda g: min(abs(g.resolution.x), abs(g.resolution.y)))
        rx, ry = abs(finest.resolution.x), abs(finest.resolution.y)
    if target_resolution is not None:
        rx, ry = _resolution(target_resolution)
    elif finest is None:  # a foreign CRS: the native finest resolution carried over ("fit" at the centre pixel)
        source = min((g for p in parsed if _same(_item_crs(p), native) for g in p.geoboxes()),
                     key=lambda g: min(abs(g.resolution.x), abs(g.resolution.y)))
        res = compute_output_geobox(source, OdcCRS(out_crs.to_wkt()), resolution="auto").resolution
        rx, ry = abs(res.x), abs(res.y)
    anchor: Any = "edge"
    if finest is not None:
        ax, ay = _fraction(finest.affine.c / rx), _fraction(finest.affine.f / ry)
        anchor = xy_(ax, ay) if (ax or ay) else "edge"

    if bbox is not None:
        bounds = bbox_bounds_in(bbox, out_crs)
    else:
        odc_crs = OdcCRS(out_crs.to_wkt())
        boxes = [p.safe_geometry(odc_crs).boundingbox for p in _watched(parsed)]
        bounds = (min(b.left for b in boxes), min(b.bottom for b in boxes),
                  max(b.right for b in boxes), max(b.top for b in boxes))
    epsg = out_crs.to_epsg()
    crs_arg = f"EPSG:{epsg}" if epsg else out_crs.to_wkt()
    return GeoBox.from_bbox(bounds, crs_arg, resolution=resxy_(rx, -ry), anchor=anchor)
