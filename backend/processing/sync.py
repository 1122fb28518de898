"""Graph → value (``evaluate``, shared with batch jobs) and synchronous execution: value → file,
in-process on the threads of the request's slot (``sync_slots``), under its own deadline and meter
(``compute.ComputeScope``: nothing of one request lives in process globals).

Small requests are faster on threads than on a distributed cluster (no serialisation; see PITFALLS.md);
batch jobs use the cluster.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from apicore import errors
from backend.processing.compute import ComputeScope, computing
from backend.processing.engine.executor import Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.processing.engine.pushdown import push_filters
from backend.processing.engine.implementations import Implementations
from backend.processing.limits import Deadline
from backend.processing.provenance import Provenance
from backend.processing.sync_slots import SyncSlot
from backend.processing.writers import WrittenResult, write_result
from backend.processing.writers.common import classify


def execute_process(process: Any, implementations: Implementations, context: RunContext,
                    work_dir: Path, slot: SyncSlot, timeout: float, meter: Any = None) -> WrittenResult:
    """Evaluate and write on the slot's threads; ``timeout`` counts from here and covers every stage
    that checks it (item search, grid, each Dask task); ``meter``: a Dask callback counting usage."""
    scope = ComputeScope(threads=slot.threads, pool=slot.pool, deadline=Deadline(timeout),
                         callbacks=(meter,) if meter is not None else ())
    started = datetime.now(timezone.utc)
    with computing(scope):
        data, output_format, options = evaluate(process, implementations, context)
        provenance = Provenance.of(process, context.inputs, started)
        return write_result(data, output_format, options, work_dir, metadata=provenance.file_metadata())


def evaluate(process: Any, implementations: Implementations, context: RunContext) -> tuple[Any, str, dict]:
    """Run the graph: (the value to write, its format, format options) — lazy where the processes are."""
    if not isinstance(process, dict):
        raise errors.ProcessGraphMissing("Send the process as {\"process\": {\"process_graph\": {...}}}.")
    graph = Graph.parse(process.get("process_graph"))
    graph = Graph.parse(push_filters(graph.nodes, lambda collection_id: _band_names(context, collection_id)))
    value = Executor(implementations, context).run(graph, parameter_defaults(process))
    if context.outputs:
        return context.outputs[-1]
    # no save_result: raster cubes as GeoTIFF, anything else as JSON
    return value, "GTiff" if classify(value) == "raster" else "JSON", {}


def _band_names(context: RunContext, collection_id: str) -> list[str] | None:
    """The collection's band names as load_collection knows them (None: unknown, nothing is pushed)."""
    try:
        metadata = context.services.collections.describe(collection_id, context.api_root)
        dimensions = metadata["cube:dimensions"].values()
        return next([str(v) for v in d["values"]] for d in dimensions if d.get("type") == "bands")
    except Exception:  # noqa: BLE001 - an unknown collection, no bands: load_collection says so itself
        return None


def parameter_defaults(process: dict) -> dict[str, Any]:
    """Values of the process's own declared parameters: their defaults (nothing else can set them)."""
    return {p["name"]: p["default"] for p in process.get("parameters") or []
            if isinstance(p, dict) and "name" in p and "default" in p}
