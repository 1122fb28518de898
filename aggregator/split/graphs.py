"""The graphs of a split: pure functions on JSON dicts, nothing is run.

For each top-level ``load_collection`` that ``SplitPlan.parts`` puts on another backend than the primary,
a *part graph* runs on that backend as a batch job: the node as the user wrote it plus ``save_result`` in
``PART_FORMAT``. The *primary graph* is the user's graph with those nodes replaced by
``load_stac(url, spatial_extent, temporal_extent)`` of the part's signed results URL (filled in once the
part has finished: ``SplitGraphs.primary_graph(urls)``); everything else, the result node included, is
unchanged.

Why GeoTIFF: our backend's load_stac reads a GeoTIFF job result back as the cube the job saved — dates
on ``t`` (several dates are stored as ``<date>/<band>`` bands and restacked, one date is kept as a band
tag that dates the item), bands by name in the saved order, float32 values with NaN nodata on the source
grid. A netCDF result's STAC asset names neither its bands nor its dates, and load_stac cannot read it
(checked with our backend; backend/processing/loading/dated_bands.py). The placeholder passes the
extents again (the same selection, so the same pixels) but not ``bands``: the part has already selected
them in the user's order, and band *common names* the user may have asked for are not names of the
result's bands. ``properties`` filters are applied by the part only: they name the collection's metadata.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

from aggregator.routing import FederationNoBackend, SplitPlan

PART_FORMAT = "GTiff"
PART_LOAD_NODE = "load"
PART_SAVE_NODE = "save"


@dataclass(frozen=True)
class PartGraph:
    node: str  # the load_collection node of the user's graph
    collection: str
    backend_id: str
    process_graph: dict  # load_collection + save_result, to run as a batch job on ``backend_id``

    @property
    def label(self) -> str:
        return f"part '{self.node}' (load_collection of {self.collection} on backend '{self.backend_id}')"


@dataclass(frozen=True)
class SplitGraphs:
    primary: str  # the backend running the primary graph
    parts: tuple[PartGraph, ...]
    _graph: dict  # the user's graph (a private copy)

    def primary_graph(self, urls: Mapping[str, str]) -> dict:
        """The user's graph for the primary backend, each part's load_collection replaced by load_stac of
        ``urls[node]`` (the part's signed results URL)."""
        graph = copy.deepcopy(self._graph)
        for part in self.parts:
            node = graph[part.node]
            arguments = node.get("arguments") or {}
            replacement: dict[str, Any] = {"process_id": "load_stac", "arguments": {
                "url": urls[part.node],
                "spatial_extent": arguments.get("spatial_extent"),
                "temporal_extent": arguments.get("temporal_extent"),
            }}
            for key in ("result", "description"):
                if key in node:
                    replacement[key] = node[key]
            graph[part.node] = replacement
        return graph

    def to_json(self) -> dict:
        """For the split job's record (aggregator/storage/split_records.py); ``from_json`` reads it back."""
        return {"primary": self.primary, "graph": self._graph,
                "parts": [{"node": p.node, "collection": p.collection, "backend_id": p.backend_id,
                           "process_graph": p.process_graph} for p in self.parts]}

    @classmethod
    def from_json(cls, data: Mapping) -> "SplitGraphs":
        parts = tuple(PartGraph(p["node"], p["collection"], p["backend_id"], p["process_graph"]) for p in data["parts"])
        return cls(data["primary"], parts, data["graph"])

    @property
    def backends(self) -> list[str]:
        """The primary backend, then the parts' (each once)."""
        return list(dict.fromkeys([self.primary, *(p.backend_id for p in self.parts)]))

    def describe(self) -> str:
        """One line for users (a response header, a validation note)."""
        parts = "; ".join(f"{p.node} ({p.collection}) on {p.backend_id}" for p in self.parts)
        return (f"split: {parts} run as batch jobs; the rest runs on {self.primary}, reading their results with "
                "load_stac")


def split_graphs(process_graph: Mapping, plan: SplitPlan) -> SplitGraphs:
    """The part graphs and the primary graph of ``process_graph`` under ``plan``. A load_collection whose
    arguments come from parameters or other nodes cannot be shipped alone: FederationNoBackend says so."""
    graph = copy.deepcopy(dict(process_graph))
    parts = []
    for node_id, backend_id in plan.parts.items():
        if backend_id == plan.primary:
            continue
        node = graph.get(node_id)
        if not isinstance(node, dict) or node.get("process_id") != "load_collection":
            raise ValueError(f"the split plan names {node_id!r}, which is no load_collection of this graph")
        arguments = node.get("arguments") if isinstance(node.get("arguments"), dict) else {}
        reference = _reference_in(arguments)
        if reference is not None:
            raise FederationNoBackend(reason=(
                f"its collections live on different backends, and load_collection at node '{node_id}' cannot run "
                f"on its own on backend '{backend_id}': its arguments use {reference}. Give that load_collection "
                "literal arguments."))
        load = {"process_id": "load_collection", "arguments": copy.deepcopy(arguments)}
        save = {"process_id": "save_result", "arguments": {"data": {"from_node": PART_LOAD_NODE},
                                                           "format": PART_FORMAT}, "result": True}
        parts.append(PartGraph(node_id, str(arguments.get("id")), backend_id,
                               {PART_LOAD_NODE: load, PART_SAVE_NODE: save}))
    return SplitGraphs(plan.primary, tuple(parts), graph)


def _reference_in(value: Any) -> str | None:
    """``from_node 'x'`` / ``from_parameter 'y'`` when an argument is not literal. Callbacks (``properties``
    filters) are self-contained: their parameters are their own."""
    if isinstance(value, dict):
        if "from_node" in value:
            return f"the result of node '{value['from_node']}'"
        if "from_parameter" in value:
            return f"parameter '{value['from_parameter']}'"
        if "process_graph" in value:
            return None
        values = value.values()
    elif isinstance(value, list):
        values = value
    else:
        return None
    return next((found for item in values if (found := _reference_in(item)) is not None), None)
