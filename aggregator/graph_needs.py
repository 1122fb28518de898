"""What a process graph needs from a backend: collections (with the extents loaded), processes, URLs.

``analyse(graph, resolve_udp)`` walks the graph, the callbacks in its arguments (``{"process_graph":
...}`` anywhere in an argument) and the user-defined processes it calls (each walked once, so recursive
UDPs end). A node's ``namespace`` decides what its ``process_id`` means (openEO API 1.2):
null = a UDP of the user if ``resolve_udp`` knows it, else a predefined process; ``"user"`` = a UDP only;
``"backend"`` = a predefined process only; anything else (a URL) = a remote definition, which no
backend lists in ``/processes`` and which is therefore only recorded.

Extents are read from load_collection's arguments: ``spatial_extent`` as a bbox (any CRS, converted to
WGS84 with pyproj, imported only then) or GeoJSON (its bounds); ``temporal_extent`` as two instants.
An argument taken from a parameter or another node's result is unknown and constrains nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping

from aggregator.merging.extents import parse_instant
from apicore import errors

log = logging.getLogger(__name__)

UdpResolver = Callable[[str], Mapping | None]  # UDP id -> its process graph, None if the user has none
WGS84 = {"4326", "EPSG:4326", "OGC:CRS84", "HTTP://WWW.OPENGIS.NET/DEF/CRS/OGC/1.3/CRS84"}
GEOJSON_TYPES = {"Polygon", "MultiPolygon", "Feature", "FeatureCollection", "GeometryCollection", "Point",
                 "MultiPoint", "LineString", "MultiLineString"}


@dataclass(frozen=True)
class CollectionLoad:
    node: str  # the node id; nested ones as "parent/argument/child" or "caller>udp_id:node"
    collection_id: str
    bbox: tuple[float, float, float, float] | None  # WGS84; None: no spatial constraint known
    interval: tuple[datetime | None, datetime | None] | None  # [start, end); None: no constraint known
    top_level: bool
    temporal_text: str = ""


@dataclass
class GraphNeeds:
    loads: list[CollectionLoad] = field(default_factory=list)
    processes: set[str] = field(default_factory=set)  # predefined processes a backend must offer
    udps: set[str] = field(default_factory=set)  # user-defined processes called (resolved by the aggregator)
    remote_processes: set[tuple[str, str]] = field(default_factory=set)  # (process id, namespace URL)
    urls: list[str] = field(default_factory=list)  # load_stac / load_result URLs
    result_jobs: list[str] = field(default_factory=list)  # load_result job ids (not URLs)
    unresolved: list[str] = field(default_factory=list)  # what could not be known, e.g. ids from parameters

    @property
    def collections(self) -> set[str]:
        return {use.collection_id for use in self.loads}


def analyse(process_graph: Mapping, resolve_udp: UdpResolver | None = None) -> GraphNeeds:
    needs = GraphNeeds()
    _walk(process_graph, needs, resolve_udp, prefix="", visited=set(), top_level=True)
    return needs


def _nodes(graph: Any, prefix: str) -> Iterator[tuple[str, Mapping]]:
    if not isinstance(graph, dict) or not graph:
        raise errors.ProcessGraphInvalid(f"The process graph{f' at {prefix}' if prefix else ''} must be an "
                                         "object of process nodes.")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            raise errors.ProcessGraphInvalid(f"Node '{prefix}{node_id}' must be an object with a process_id.")
        yield f"{prefix}{node_id}", node


def _walk(graph: Any, needs: GraphNeeds, resolve: UdpResolver | None, prefix: str, visited: set[str],
          top_level: bool) -> None:
    for node_id, node in _nodes(graph, prefix):
        process_id, namespace = node["process_id"], node.get("namespace")
        arguments = node.get("arguments") if isinstance(node.get("arguments"), dict) else {}
        udp = resolve(process_id) if resolve is not None and namespace in (None, "user") else None
        if udp is not None:
            needs.udps.add(process_id)
            if process_id not in visited:
                visited.add(process_id)
                _walk(udp, needs, resolve, f"{node_id}>{process_id}:", visited, top_level=False)
        elif namespace == "user":
            raise errors.ProcessGraphNotFound(identifier=process_id)
        elif namespace not in (None, "backend"):
            needs.remote_processes.add((process_id, str(namespace)))
        else:
            needs.processes.add(process_id)
            _note_data_source(process_id, arguments, node_id, needs, top_level)
        for name, value in arguments.items():
            for callback in _callbacks(value):
                _walk(callback, needs, resolve, f"{node_id}/{name}/", visited, top_level=False)


def _callbacks(value: Any) -> Iterator[Any]:
    """The child graphs (``{"process_graph": ...}``) anywhere inside an argument value."""
    if isinstance(value, dict):
        if "process_graph" in value:
            yield value["process_graph"]
        else:
            for item in value.values():
                yield from _callbacks(item)
    elif isinstance(value, list):
        for item in value:
            yield from _callbacks(item)


def _note_data_source(process_id: str, arguments: Mapping, node_id: str, needs: GraphNeeds, top_level: bool) -> None:
    if process_id == "load_collection":
        collection_id = arguments.get("id")
        if not isinstance(collection_id, str):
            needs.unresolved.append(f"load_collection at node {node_id}: its collection id is not given literally")
            return
        interval, text = _interval(arguments.get("temporal_extent"))
        needs.loads.append(CollectionLoad(node_id, collection_id, _bbox(arguments.get("spatial_extent")), interval,
                                          top_level, text))
    elif process_id in ("load_stac", "load_result"):
        reference = arguments.get("url" if process_id == "load_stac" else "id")
        if isinstance(reference, str) and reference.lower().startswith(("http://", "https://")):
            needs.urls.append(reference)
        elif process_id == "load_result" and isinstance(reference, str):
            needs.result_jobs.append(reference)


def _interval(value: Any) -> tuple[tuple[datetime | None, datetime | None] | None, str]:
    if not isinstance(value, list) or len(value) != 2 or not all(v is None or isinstance(v, str) for v in value):
        return None, ""
    try:
        return (parse_instant(value[0]), parse_instant(value[1])), f"{value[0]} to {value[1] or 'open end'}"
    except ValueError:
        return None, ""  # the backend's validation explains a malformed date better than routing can


def _bbox(extent: Any) -> tuple[float, float, float, float] | None:
    if not isinstance(extent, dict):
        return None
    if all(k in extent for k in ("west", "south", "east", "north")):
        try:
            bbox = tuple(float(extent[k]) for k in ("west", "south", "east", "north"))
        except (TypeError, ValueError):
            return None
        crs = extent.get("crs")
        return bbox if crs is None or str(crs).upper() in WGS84 else _to_wgs84(bbox, crs)
    if extent.get("type") in GEOJSON_TYPES:
        points = list(_positions(extent))
        if points:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            return min(xs), min(ys), max(xs), max(ys)
    return None


def _positions(geojson: Any) -> Iterator[tuple[float, float]]:
    if isinstance(geojson, dict):
        for key in ("coordinates", "geometry", "geometries", "features"):
            if key in geojson:
                yield from _positions(geojson[key])
    elif isinstance(geojson, list):
        if len(geojson) >= 2 and all(isinstance(v, (int, float)) for v in geojson[:2]):
            yield float(geojson[0]), float(geojson[1])
        else:
            for item in geojson:
                yield from _positions(item)


def _to_wgs84(bbox: tuple[float, float, float, float], crs: Any) -> tuple[float, float, float, float] | None:
    try:
        from pyproj import CRS, Transformer

        source = CRS.from_epsg(crs) if isinstance(crs, int) else CRS.from_user_input(crs)
        transformer = Transformer.from_crs(source, CRS.from_epsg(4326), always_xy=True)
        # densified edges: a projected bbox's edges are curves in WGS84
        return tuple(transformer.transform_bounds(*bbox, densify_pts=21))
    except Exception as exc:  # an unknown CRS: the backend's validation reports it; routing ignores the bbox
        log.info("bbox in CRS %r not converted to WGS84 for routing: %s", crs, exc)
        return None
