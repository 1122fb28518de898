"""Spatial and temporal extents: unions for merged metadata, overlap tests for routing.

Bboxes are STAC's ``[west, south, east, north]`` (or 3D ``[w, s, zmin, e, n, zmax]``) in WGS84; a bbox
with west > east crosses the antimeridian. Intervals are ``[start, end]`` RFC 3339 strings, ``None`` =
open. Comparisons parse the instants (``2022-01-01`` and ``2022-01-01T00:00:00Z`` are equal) but the
unions return the backends' own strings.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable, Sequence

Bbox = Sequence[float]
_YEAR = re.compile(r"^\d{4}$")


def parse_instant(value: str | None) -> datetime | None:
    """An RFC 3339 date-time, a date or a year as an aware UTC datetime (naive = UTC); None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date or date-time string: {value!r}")
    text = value.strip()
    if _YEAR.match(text):
        text += "-01-01"
    if text[-1:] in "zZ":
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _key(value: str | None, open_as: datetime) -> datetime:
    try:
        return parse_instant(value) or open_as
    except ValueError:
        return open_as


_MIN = datetime.min.replace(tzinfo=timezone.utc)
_MAX = datetime.max.replace(tzinfo=timezone.utc)


def union_interval(intervals: Iterable[Sequence[str | None]]) -> list[str | None]:
    """The smallest interval holding all: earliest start, latest end; open (None) ends stay open."""
    intervals = [i for i in intervals if isinstance(i, (list, tuple)) and len(i) == 2]
    if not intervals:
        return [None, None]
    if all(i == intervals[0] for i in intervals):
        return list(intervals[0])
    starts = [i[0] for i in intervals]
    ends = [i[1] for i in intervals]
    start = None if None in starts else min(starts, key=lambda s: _key(s, _MIN))
    end = None if None in ends else max(ends, key=lambda e: _key(e, _MAX))
    return [start, end]


def union_temporal_extents(per_backend: Iterable[list | None]) -> list[list[str | None]]:
    """STAC ``temporal.interval`` lists: the overall interval first, then every backend's own, each once."""
    lists = [[i for i in intervals if isinstance(i, (list, tuple)) and len(i) == 2]
             for intervals in per_backend if isinstance(intervals, list)]
    lists = [intervals for intervals in lists if intervals]
    overall = union_interval(intervals[0] for intervals in lists)
    return [overall, *_further(lists, overall)]


def _further(lists: list[list], overall: list) -> list:
    """Each backend's precise extents (its sub-extents if it has any, else its overall), once each;
    none when that is just the overall extent again."""
    further: list = []
    for extents in lists:
        for extent in (extents[1:] if len(extents) > 1 else extents[:1]):
            if list(extent) not in further:
                further.append(list(extent))
    return [] if further == [overall] else further


_NUMBERS = frozenset({int, float})


def _is_bbox(value) -> bool:
    return type(value) in (list, tuple) and len(value) in (4, 6) and _NUMBERS.issuperset(map(type, value))


def bbox_2d(bbox: Bbox) -> tuple[float, float, float, float]:
    if len(bbox) == 6:
        return bbox[0], bbox[1], bbox[3], bbox[4]
    return bbox[0], bbox[1], bbox[2], bbox[3]


def union_bbox(bboxes: Iterable[Bbox]) -> list[float]:
    """The smallest bbox holding all (3D only when all are 3D); any antimeridian crossing: all longitudes."""
    bboxes = [b for b in bboxes if _is_bbox(b)]
    wests, souths, easts, norths = zip(*(bbox_2d(b) for b in bboxes))
    west, south, east, north = min(wests), min(souths), max(easts), max(norths)
    if any(w > e for w, e in zip(wests, easts)):
        west, east = -180.0, 180.0
    if all(len(b) == 6 for b in bboxes):
        return [west, south, min(b[2] for b in bboxes), east, north, max(b[5] for b in bboxes)]
    return [west, south, east, north]


def union_spatial_extents(per_backend: Iterable[list | None]) -> list[list[float]]:
    """STAC ``spatial.bbox`` lists: the overall bbox first, then every backend's own bboxes, each once."""
    lists = [[b for b in bboxes if _is_bbox(b)] for bboxes in per_backend if isinstance(bboxes, list)]
    lists = [bboxes for bboxes in lists if bboxes]
    if not lists:
        return []
    overall = union_bbox(bboxes[0] for bboxes in lists)
    return [overall, *_further(lists, overall)]


def union_range(ranges: Iterable[Sequence | None], temporal: bool = False) -> list:
    """``cube:dimensions`` extents ``[min, max]`` (numbers or instants); None ends stay open."""
    ranges = [r for r in ranges if isinstance(r, (list, tuple)) and len(r) == 2]
    if temporal:
        return union_interval(ranges)
    lows, highs = [r[0] for r in ranges], [r[1] for r in ranges]
    return [None if None in lows else min(lows), None if None in highs else max(highs)]


# -- overlap tests (routing) --

def _parts(bbox: Bbox) -> list[tuple[float, float, float, float]]:
    west, south, east, north = bbox_2d(bbox)
    if west > east:  # crosses the antimeridian: two boxes
        return [(west, south, 180.0, north), (-180.0, south, east, north)]
    return [(west, south, east, north)]


def bbox_intersects(a: Bbox, b: Bbox) -> bool:
    return any(p[0] <= q[2] and q[0] <= p[2] and p[1] <= q[3] and q[1] <= p[3]
               for p in _parts(a) for q in _parts(b))


def bbox_contains(outer: Bbox, inner: Bbox) -> bool:
    return all(any(o[0] <= i[0] and i[2] <= o[2] and o[1] <= i[1] and i[3] <= o[3] for o in _parts(outer))
               for i in _parts(inner))


def interval_overlap(collection: Sequence[str | None], request: Sequence[datetime | None]) -> str:
    """How a collection's closed interval meets a request's half-open ``[start, end)``:
    ``"covers"``, ``"partial"`` or ``"none"`` (unparseable collection instants count as open)."""
    c_start, c_end = _key(collection[0], _MIN), _key(collection[1], _MAX)
    r_start, r_end = request[0] or _MIN, request[1] or _MAX
    if not (c_start < r_end and r_start <= c_end):
        return "none"
    if c_start <= r_start and (c_end == _MAX or (r_end != _MAX and r_end <= c_end)):
        return "covers"
    return "partial"
