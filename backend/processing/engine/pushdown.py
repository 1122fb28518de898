"""Filters that follow a load, pushed into the load: the graph's effective extent decides what is searched
and read (and what the synchronous size limit counts), so a request written with ``filter_bbox``,
``filter_temporal``, ``filter_bands`` or ``filter_spatial`` after ``load_collection``/``load_stac`` costs
what the same request with load arguments costs.

A rewrite of the top-level graph before evaluation (the graph as sent stays as it is: provenance, the
stored job). A filter is pushed only where that cannot change the answer: its ``data`` is a load node
that nothing else reads, its arguments are literal (no parameters), and the two extents combine
exactly (same CRS; bands by their names in the collection). Then the filter node becomes the load with
the combined arguments; ``filter_spatial`` stays (it masks by the geometries) and the load gets their
bounding box, padded by PAD_DEGREES so that every pixel the mask keeps is loaded.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any, Callable

import pandas as pd

LOADS = frozenset({"load_collection", "load_stac"})
PAD_DEGREES = 0.001  # ~100 m: more than a pixel of any collection served here
WGS84_CODES = (None, 4326, "4326", "EPSG:4326", "epsg:4326")
COMBINED = ("id", "spatial_extent", "temporal_extent", "bands")  # the load arguments a filter changes

BandsOf = Callable[[str], "list[str] | None"]  # a collection's band names (None: unknown)


def push_filters(nodes: dict[str, dict], bands_of: BandsOf) -> dict[str, dict]:
    """A copy of the (already checked) top-level graph with every pushable filter pushed into its load."""
    nodes = copy.deepcopy(nodes)
    while _push_one(nodes, bands_of):
        pass
    return nodes


def _push_one(nodes: dict[str, dict], bands_of: BandsOf) -> bool:
    readers = Counter(ref for node in nodes.values() for ref in _references(node.get("arguments", {})))
    for filter_id, node in nodes.items():
        merge = MERGES.get(node["process_id"])
        source = node["arguments"].get("data")
        if merge is None or not (isinstance(source, dict) and set(source) == {"from_node"}):
            continue
        load_id = source["from_node"]
        load = nodes.get(load_id)
        if load is None or load["process_id"] not in LOADS or readers[load_id] != 1 or load.get("result"):
            continue
        arguments = {name: value for name, value in node["arguments"].items() if name != "data"}
        combined = {name: load["arguments"].get(name) for name in COMBINED}
        if not _literal(arguments) or not _literal(combined):
            continue
        merged = merge(dict(load["arguments"]), arguments, load, bands_of)
        if merged is None or merged == load["arguments"]:
            continue
        if node["process_id"] == "filter_spatial":  # it stays and masks; the load reads its bounding box
            load["arguments"] = merged
        else:
            nodes[filter_id] = {**load, "arguments": merged, "result": node.get("result", False)}
            del nodes[load_id]
        return True
    return False


def _merge_bbox(arguments: dict, filter_arguments: dict, load: dict, bands_of: BandsOf) -> dict | None:
    return _with_extent(arguments, filter_arguments.get("extent"))


def _with_extent(arguments: dict, extent: Any) -> dict | None:
    if not _is_bbox(extent):
        return None
    current = arguments.get("spatial_extent")
    if current is None:
        return {**arguments, "spatial_extent": extent}
    if not _is_bbox(current) or _crs(current) != _crs(extent):
        return None
    combined = {"west": max(current["west"], extent["west"]), "south": max(current["south"], extent["south"]),
                "east": min(current["east"], extent["east"]), "north": min(current["north"], extent["north"])}
    if combined["west"] >= combined["east"] or combined["south"] >= combined["north"]:
        return None  # no overlap: left to the processes to answer as they do
    if "crs" in extent or "crs" in current:
        combined["crs"] = extent.get("crs", current.get("crs"))
    return {**arguments, "spatial_extent": combined}


def _merge_temporal(arguments: dict, filter_arguments: dict, load: dict, bands_of: BandsOf) -> dict | None:
    extent = filter_arguments.get("extent")
    if filter_arguments.get("dimension") not in (None, "t") or not _is_interval(extent):
        return None
    current = arguments.get("temporal_extent")
    if current is None:
        return {**arguments, "temporal_extent": list(extent)}
    if not _is_interval(current):
        return None
    try:
        start = max((v for v in (current[0], extent[0]) if v is not None), key=_instant, default=None)
        end = min((v for v in (current[1], extent[1]) if v is not None), key=_instant, default=None)
        if start is not None and end is not None and _instant(end) <= _instant(start):
            return None
    except (ValueError, TypeError):
        return None
    return {**arguments, "temporal_extent": [start, end]}


def _merge_bands(arguments: dict, filter_arguments: dict, load: dict, bands_of: BandsOf) -> dict | None:
    bands = filter_arguments.get("bands")
    if filter_arguments.get("wavelengths") is not None or not isinstance(bands, list) or not bands:
        return None
    if not all(isinstance(band, str) for band in bands) or len(set(bands)) != len(bands):
        return None
    available = arguments.get("bands")
    if available is None and load["process_id"] == "load_collection":
        available = bands_of(str(arguments.get("id")))
    if not isinstance(available, list) or not set(bands) <= set(available):
        return None  # common names, unknown bands: the filter resolves (or refuses) them itself
    return {**arguments, "bands": list(bands)}


def _merge_spatial(arguments: dict, filter_arguments: dict, load: dict, bands_of: BandsOf) -> dict | None:
    bounds = _geojson_bounds(filter_arguments.get("geometries"))
    if bounds is None:
        return None
    west, south, east, north = bounds
    padded = {"west": west - PAD_DEGREES, "south": south - PAD_DEGREES, "east": east + PAD_DEGREES,
              "north": north + PAD_DEGREES}
    return _with_extent(arguments, padded)


MERGES: dict[str, Callable[[dict, dict, dict, BandsOf], dict | None]] = {
    "filter_bbox": _merge_bbox, "filter_temporal": _merge_temporal, "filter_bands": _merge_bands,
    "filter_spatial": _merge_spatial}


def _geojson_bounds(geometries: Any) -> tuple[float, float, float, float] | None:
    """Bounds of inline GeoJSON (WGS84 by definition), or None for anything else (vector cubes, URLs)."""
    import shapely.geometry

    if not isinstance(geometries, dict):
        return None
    kind = geometries.get("type")
    try:
        if kind == "FeatureCollection":
            shapes = [shapely.geometry.shape(f["geometry"]) for f in geometries.get("features") or []]
        elif kind == "Feature":
            shapes = [shapely.geometry.shape(geometries["geometry"])]
        else:
            shapes = [shapely.geometry.shape(geometries)]
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException):
        return None
    shapes = [shape for shape in shapes if not shape.is_empty]
    if not shapes:
        return None
    bounds = [shape.bounds for shape in shapes]
    return (min(b[0] for b in bounds), min(b[1] for b in bounds), max(b[2] for b in bounds),
            max(b[3] for b in bounds))


def _is_bbox(extent: Any) -> bool:
    return (isinstance(extent, dict) and all(isinstance(extent.get(side), (int, float))
                                             and not isinstance(extent.get(side), bool)
                                             for side in ("west", "south", "east", "north"))
            and set(extent) <= {"west", "south", "east", "north", "crs", "base", "height"}
            and extent.get("base") is None and extent.get("height") is None)


def _crs(extent: dict) -> Any:
    crs = extent.get("crs")
    return 4326 if crs in WGS84_CODES else crs


def _is_interval(extent: Any) -> bool:
    return (isinstance(extent, list) and len(extent) == 2 and all(v is None or isinstance(v, str) for v in extent)
            and extent != [None, None])


def _instant(value: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def _literal(value: Any) -> bool:
    if isinstance(value, dict):
        if "from_parameter" in value or "from_node" in value or "process_graph" in value:
            return False
        return all(_literal(item) for item in value.values())
    if isinstance(value, list):
        return all(_literal(item) for item in value)
    return True


def _references(value: Any):
    """``from_node`` targets in an argument, not inside callbacks (their nodes are their own)."""
    if isinstance(value, dict):
        if set(value) == {"from_node"}:
            yield value["from_node"]
        elif "process_graph" not in value:
            for item in value.values():
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
