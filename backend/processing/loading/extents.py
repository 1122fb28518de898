"""openEO spatial/temporal extents: validation, normalisation and (densified) reprojection.

* A bounding box is ``{west, south, east, north, crs?}``; ``crs`` is an EPSG code (int or
  "EPSG:n"), WKT or PROJ string and defaults to EPSG:4326. ``base``/``height`` are ignored.
  Reprojection samples every edge (``DENSIFY_PTS`` points), because projecting the four corners
  under-covers the curved edges.
* A temporal interval is ``[start, end]``, LEFT-CLOSED (start <= t < end), either end may be
  null (or ".."). A date "2022-06-01" means 2022-06-01T00:00:00Z; datetimes without an offset
  are UTC.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import Polygon, box

from apicore import errors

PROCESS = "load_collection"
DENSIFY_PTS = 21
WGS84 = CRS.from_epsg(4326)
UTC = dt.timezone.utc


def invalid(parameter: str, reason: str) -> errors.OpenEOError:
    return errors.ProcessParameterInvalid(process=PROCESS, parameter=parameter, reason=reason)


def parse_crs(value: Any, parameter: str = "spatial_extent") -> CRS:
    if value is None:
        return WGS84
    try:
        if isinstance(value, bool):
            raise CRSError("not a CRS")
        if isinstance(value, (int, np.integer)) or (isinstance(value, str) and value.strip().isdigit()):
            return CRS.from_epsg(int(value))
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as exc:
        raise invalid(parameter, f"crs {value!r} is not a valid EPSG code, WKT or PROJ string ({exc})") from None


@dataclass(frozen=True)
class BBox:
    west: float
    south: float
    east: float
    north: float
    crs: CRS

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.west, self.south, self.east, self.north)

    def describe(self) -> str:
        return f"west={self.west:g}, south={self.south:g}, east={self.east:g}, north={self.north:g} ({crs_label(self.crs)})"


def crs_label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _field(extent: Any, name: str) -> Any:
    if isinstance(extent, dict):
        return extent.get(name)
    return getattr(extent, name, None)


def normalize_bbox(spatial_extent: Any) -> BBox | None:
    """The openEO bounding box as a ``BBox``; raises ProcessParameterInvalid saying what to change."""
    if spatial_extent is None:
        return None
    if isinstance(spatial_extent, dict) and "type" in spatial_extent and "west" not in spatial_extent:
        raise invalid("spatial_extent", f"GeoJSON ({spatial_extent['type']}) extents are not supported yet; "
                                        "give a bounding box {west, south, east, north, crs}")
    values = {}
    for name in ("west", "south", "east", "north"):
        value = _field(spatial_extent, name)
        if value is None:
            raise invalid("spatial_extent", f"'{name}' is missing; give west, south, east and north")
        try:
            values[name] = float(value)
        except (TypeError, ValueError):
            raise invalid("spatial_extent", f"'{name}' must be a number, got {value!r}") from None
        if not math.isfinite(values[name]):
            raise invalid("spatial_extent", f"'{name}' must be a finite number, got {value!r}")
    crs = parse_crs(_field(spatial_extent, "crs"))
    w, s, e, n = values["west"], values["south"], values["east"], values["north"]
    if w > e:
        raise invalid("spatial_extent", f"west ({w:g}) is greater than east ({e:g}): west must be the smaller "
                                        "x coordinate; swap west and east")
    if s > n:
        raise invalid("spatial_extent", f"south ({s:g}) is greater than north ({n:g}): south must be the smaller "
                                        "y coordinate; swap south and north")
    if crs.is_geographic and (s < -90 or n > 90):
        raise invalid("spatial_extent", f"latitudes must lie within -90..90 (south={s:g}, north={n:g}); "
                                        "if these are projected coordinates, set 'crs' to their EPSG code")
    return BBox(w, s, e, n, crs)


def _ring(bbox: BBox, pts: int = DENSIFY_PTS) -> tuple[np.ndarray, np.ndarray]:
    """The bbox outline with ``pts`` points per edge (closed, counter-clockwise)."""
    t = np.linspace(0.0, 1.0, pts, endpoint=False)
    w, s, e, n = bbox.bounds
    xs = np.concatenate([w + (e - w) * t, np.full(pts, e), e - (e - w) * t, np.full(pts, w)])
    ys = np.concatenate([np.full(pts, s), s + (n - s) * t, np.full(pts, n), n - (n - s) * t])
    return xs, ys


def _same(a: CRS, b: CRS) -> bool:
    return a == b or (a.to_epsg() is not None and a.to_epsg() == b.to_epsg())


def bbox_polygon(bbox: BBox, dst: CRS = WGS84) -> Polygon:
    """The bbox as a densified polygon in ``dst`` (a plain box when no reprojection is needed)."""
    if _same(bbox.crs, dst):
        return box(*bbox.bounds)
    if bbox.west == bbox.east or bbox.south == bbox.north:  # a point or line: its bounds will do
        return box(*bbox_bounds_in(bbox, dst))
    xs, ys = _ring(bbox)
    tx, ty = Transformer.from_crs(bbox.crs, dst, always_xy=True).transform(xs, ys)
    if not (np.isfinite(tx).all() and np.isfinite(ty).all()):
        raise invalid("spatial_extent", f"the extent {bbox.describe()} cannot be projected to {crs_label(dst)}; "
                                        "check the coordinates and the crs")
    return Polygon(zip(tx, ty))


def bbox_bounds_in(bbox: BBox, dst: CRS) -> tuple[float, float, float, float]:
    """Bounds of the bbox reprojected to ``dst`` (densified edges); unchanged for the same CRS."""
    if _same(bbox.crs, dst):
        return bbox.bounds
    transformer = Transformer.from_crs(bbox.crs, dst, always_xy=True)
    bounds = transformer.transform_bounds(*bbox.bounds, densify_pts=DENSIFY_PTS)
    if not all(math.isfinite(v) for v in bounds):
        raise invalid("spatial_extent", f"the extent {bbox.describe()} cannot be projected to {crs_label(dst)}; "
                                        "check the coordinates and the crs")
    return bounds


# --- time ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeInterval:
    """Left-closed interval [start, end); None is an open end. All datetimes are UTC-aware."""

    start: dt.datetime | None
    end: dt.datetime | None

    def contains(self, t: dt.datetime) -> bool:
        return (self.start is None or t >= self.start) and (self.end is None or t < self.end)

    def overlaps(self, first: dt.datetime, last: dt.datetime) -> bool:
        """Does the closed item range [first, last] meet [start, end)?"""
        return (self.end is None or first < self.end) and (self.start is None or last >= self.start)

    def to_stac(self) -> str | None:
        """STAC API ``datetime`` (closed on both ends: filter the end out afterwards)."""
        if self.start is None and self.end is None:
            return None
        return f"{format_time(self.start) if self.start else '..'}/{format_time(self.end) if self.end else '..'}"

    def describe(self) -> str:
        return f"[{format_time(self.start) if self.start else '..'}, {format_time(self.end) if self.end else '..'})"


def format_time(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond:06d}" if t.microsecond else "") + "Z"


def parse_instant(value: Any, parameter: str = "temporal_extent") -> dt.datetime | None:
    """A date or date-time (string, date or datetime) as an aware UTC datetime; None/".." for open."""
    if value is None or value == "..":
        return None
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, dt.date):
        t = dt.datetime.combine(value, dt.time())
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                t = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
            else:
                t = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise invalid(parameter, f"{value!r} is not an RFC 3339 date (YYYY-MM-DD) or date-time "
                                     "(YYYY-MM-DDTHH:MM:SSZ)") from None
    else:
        raise invalid(parameter, f"{value!r} is not a date or date-time string")
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def normalize_interval(temporal_extent: Any) -> TimeInterval | None:
    if temporal_extent is None:
        return None
    if isinstance(temporal_extent, (str, bytes)) or not hasattr(temporal_extent, "__len__") \
            or len(temporal_extent) != 2:
        raise invalid("temporal_extent", "give exactly two values [start, end] (either may be null)")
    start, end = (parse_instant(v) for v in temporal_extent)
    if start is not None and end is not None and end <= start:
        raise invalid("temporal_extent", f"the interval is empty: end ({format_time(end)}) must be later than "
                                         f"start ({format_time(start)}); the end is excluded, so for a single "
                                         "day give the next day as end")
    return TimeInterval(start, end)
