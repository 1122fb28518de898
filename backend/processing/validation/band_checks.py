"""Band names a run would not resolve, found by following the bands through a graph (nothing is loaded).

The bands of a node's result are known when they come from ``load_collection`` (the collection's bands,
or the requested ones, with their common names) through processes that leave the bands dimension as
it is (KEEP_BANDS), ``filter_bands`` (a selection) or ``ndvi`` with ``target_band`` (one more band).
Against those, ``ndvi``'s ``nir``/``red`` (defaults ``nir`` and ``red``: common names) and
``filter_bands``' ``bands`` are checked with the functions the processes use at run time
(processes/common_names.py), so the dry run reports what the run would raise, in the same words.

Anything else (load_stac, a process parameter, merge_cubes, a process not listed) makes the bands
unknown, and nothing depending on them is reported: a dry run reports only certain failures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from apicore import errors
from backend.processing.validation.schemas import is_literal

# Processes whose result has the bands of their `data` argument, unchanged (when the dimension they work
# on, if any, is not `bands`).
KEEP_BANDS = {"filter_temporal", "filter_bbox", "filter_spatial", "apply", "mask", "mask_polygon",
              "resample_spatial", "resample_cube_spatial", "resample_cube_temporal", "apply_kernel",
              "apply_neighborhood", "aggregate_temporal", "aggregate_temporal_period", "anomaly",
              "climatological_normal", "reduce_dimension", "apply_dimension", "filter_labels", "rename_labels",
              "drop_dimension", "add_dimension"}
# The argument naming the dimension those processes change; the bands are kept unless it is `bands`.
DIMENSION_ARGUMENT = {"reduce_dimension": "dimension", "apply_dimension": "dimension", "filter_labels": "dimension",
                      "rename_labels": "dimension", "drop_dimension": "name", "add_dimension": "name"}
BANDS = "bands"

Table = Any  # processes.common_names.BandTable (imported lazily: it pulls in xarray)


def check_bands(process_graph: dict,
                collection_metadata: Callable[[str], dict | None]) -> Iterator[tuple[str, errors.OpenEOError]]:
    """(node id, error) for each ndvi / filter_bands node of one (parsed) graph whose bands would not resolve.
    ``collection_metadata(id)``: the collection's openEO metadata, or None when unknown."""
    flow = _BandFlow(process_graph, collection_metadata)
    for node_id, node in process_graph.items():
        if node.get("process_id") in ("ndvi", "filter_bands") and _predefined(node):
            for error in flow.problems(node):
                yield node_id, error


def _predefined(node: dict) -> bool:
    return node.get("namespace") in (None, "backend")  # predefined processes come first for both


class _BandFlow:
    def __init__(self, process_graph: dict, collection_metadata: Callable[[str], dict | None]):
        self.nodes = process_graph
        self.collection_metadata = collection_metadata
        self._bands: dict[str, Table | None] = {}

    def problems(self, node: dict) -> list[errors.OpenEOError]:
        """What the ndvi or filter_bands node would raise on its input's bands (mistyped arguments: nothing,
        the schema check reports them)."""
        from backend.processing.processes import common_names

        arguments = node.get("arguments") or {}
        table = self.input_bands(arguments.get("data"))
        if table is None:
            return []
        if node["process_id"] == "ndvi":
            nir, red = arguments.get("nir", "nir"), arguments.get("red", "red")
            target = arguments.get("target_band")
            if isinstance(nir, str) and isinstance(red, str) and (target is None or isinstance(target, str)):
                return list(common_names.ndvi_problems(table, nir, red, target))
            return []
        bands = arguments.get("bands")
        if isinstance(bands, list) and is_literal(bands) and all(isinstance(b, str) for b in bands):
            try:
                common_names.filter_positions(table, bands)
            except errors.OpenEOError as exc:
                return [exc]
        return []

    def input_bands(self, value: Any) -> Table | None:
        if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("from_node"), str):
            return self.bands_of(value["from_node"])
        return None

    def bands_of(self, node_id: str) -> Table | None:
        if node_id not in self._bands:
            self._bands[node_id] = None  # also guards against cycles while it is computed
            node = self.nodes.get(node_id)
            self._bands[node_id] = self._result_bands(node) if isinstance(node, dict) else None
        return self._bands[node_id]

    def _result_bands(self, node: dict) -> Table | None:
        from backend.processing.processes import common_names

        process_id, arguments = node.get("process_id"), node.get("arguments") or {}
        if not _predefined(node):
            return None
        if process_id == "load_collection":
            return self._loaded(arguments)
        table = self.input_bands(arguments.get("data"))
        if table is None:
            return None
        if process_id in KEEP_BANDS:
            if process_id not in DIMENSION_ARGUMENT:
                return table
            dimension = arguments.get(DIMENSION_ARGUMENT[process_id])
            if not isinstance(dimension, str) or dimension == BANDS:
                return None
            if process_id == "apply_dimension" and arguments.get("target_dimension") not in (None, dimension):
                return None  # the source dimension is replaced by the target
            return table
        if process_id == "filter_bands":
            bands = arguments.get("bands")
            if not (isinstance(bands, list) and is_literal(bands)):
                return None
            try:
                positions = common_names.filter_positions(table, bands)
            except errors.OpenEOError:
                return None  # reported at that node
            return common_names.BandTable(tuple(table.labels[i] for i in positions),
                                          tuple(table.commons[i] for i in positions))
        if process_id == "ndvi" and isinstance(arguments.get("target_band"), str):
            return common_names.BandTable((*table.labels, arguments["target_band"]), (*table.commons, ""))
        return None

    def _loaded(self, arguments: dict) -> Table | None:
        from backend.processing.loading.bands import resolve_bands
        from backend.processing.processes import common_names

        collection_id, bands = arguments.get("id"), arguments.get("bands")
        if not isinstance(collection_id, str) or not is_literal(bands):
            return None
        metadata = self.collection_metadata(collection_id)
        if metadata is None:
            return None
        try:
            chosen = resolve_bands(metadata, bands)
        except errors.OpenEOError:
            return None  # load_collection's own check reports it
        return common_names.BandTable(tuple(b.name for b in chosen), tuple(b.common_name or "" for b in chosen))
