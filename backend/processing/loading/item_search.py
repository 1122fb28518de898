"""Find the STAC items of a collection for an area (WGS84 polygon), a time interval and property filters.

* Static catalogs (pystac): every item of the collection is checked in Python.
* STAC APIs (pystac-client): item search with collections, bbox and datetime (POST); the same
  Python checks are then applied to the answer, so both kinds of source select identical items
  (the API's datetime interval is closed, openEO's is left-closed; not every API has CQL2, so
  property filters always run here).

Property filters are ``{property: predicate(value) -> bool}``; an item without the property fails.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pystac
from pystac.utils import str_to_datetime
from shapely.geometry import Polygon, box, shape

from backend.processing.limits import check_deadline
from backend.processing.loading.extents import UTC, TimeInterval, invalid

log = logging.getLogger(__name__)

SEARCH_PAGE_SIZE = 250
STAGE = "the item search"
_STATIC_LOCK = threading.Lock()
PropertyFilters = dict[str, Callable[[Any], bool]]


def check_properties(properties: Any) -> PropertyFilters | None:
    if not properties:
        return None
    if not isinstance(properties, dict):
        raise invalid("properties", "give an object mapping property names to conditions")
    for name, predicate in properties.items():
        if not callable(predicate):
            raise invalid("properties", f"the condition for {name!r} is not a process (callback)")
    return properties


def item_time_range(item: pystac.Item) -> tuple[dt.datetime, dt.datetime] | None:
    start = item.properties.get("start_datetime")
    end = item.properties.get("end_datetime")
    first = str_to_datetime(start) if start else item.datetime
    last = str_to_datetime(end) if end else item.datetime
    if first is None or last is None:
        return None
    return _utc(first), _utc(last)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def in_time(item: pystac.Item, interval: TimeInterval | None) -> bool:
    if interval is None:
        return True
    span = item_time_range(item)
    if span is None:
        return False
    first, last = span
    if item.datetime is not None and not item.properties.get("start_datetime"):
        return interval.contains(first)  # an instant: start <= t < end
    return interval.overlaps(first, last)


def footprint(item: pystac.Item):
    if item.geometry:
        return shape(item.geometry)
    if item.bbox:
        b = item.bbox
        return box(b[0], b[1], b[3], b[4]) if len(b) == 6 else box(*b)
    return None


def in_area(item: pystac.Item, area: Polygon | None) -> bool:
    if area is None:
        return True
    geom = footprint(item)
    return geom is None or geom.intersects(area)


def passes(item: pystac.Item, properties: PropertyFilters | None) -> bool:
    for name, predicate in (properties or {}).items():
        if name not in item.properties:
            return False
        try:
            ok = predicate(item.properties[name])
        except Exception as exc:  # a predicate failing on one item's value rejects that item
            log.info("property filter %s failed on item %s: %s", name, item.id, exc)
            return False
        if not ok:
            return False
    return True


def _is_api(source: Any) -> bool:
    return hasattr(source, "client") and not hasattr(source, "items")


def _candidates(source: Any, stac_id: str, area: Polygon | None, interval: TimeInterval | None,
                max_items: int | None = None) -> Iterable[pystac.Item]:
    """The source's items (an API: those its search returns, page by page); the request's deadline is
    checked before every item, so a slow source or a huge catalog ends at the deadline, not later."""
    if _is_api(source):
        search = source.client.search(
            collections=[stac_id], bbox=list(area.bounds) if area is not None else None,
            datetime=interval.to_stac() if interval is not None else None,
            method="POST", limit=SEARCH_PAGE_SIZE, max_items=max_items)
        for item in search.items():
            check_deadline(STAGE)
            yield item
        return
    while not _STATIC_LOCK.acquire(timeout=0.1):  # another request reads the catalog: wait, up to the deadline
        check_deadline(STAGE)
    try:  # pystac resolves item links lazily, mutating the shared catalog objects
        items = []
        for item in source.items(stac_id):
            check_deadline(STAGE)
            items.append(item)
    finally:
        _STATIC_LOCK.release()
    yield from items


@dataclass
class SearchResult:
    items: list[pystac.Item]  # matching area, time and properties; sorted by (time, id)
    before_properties: int  # how many matched area and time


def find_items(ref, area: Polygon | None, interval: TimeInterval | None,
               properties: PropertyFilters | None) -> SearchResult:
    matching = [item for item in _candidates(ref.source, ref.stac_id, area, interval)
                if in_area(item, area) and in_time(item, interval)]
    selected = [item for item in matching if passes(item, properties)]
    selected.sort(key=_sort_key)
    return SearchResult(selected, len(matching))


def _sort_key(item: pystac.Item) -> tuple:
    span = item_time_range(item)
    return (span is None, span[0] if span else dt.datetime.min.replace(tzinfo=UTC), item.id)


def any_item(ref, area: Polygon | None = None, interval: TimeInterval | None = None) -> bool:
    """Is there at least one item in the area (at any time) or in the interval (anywhere)?"""
    for item in _candidates(ref.source, ref.stac_id, area, interval, max_items=None):
        if in_area(item, area) and in_time(item, interval):
            return True
    return False
