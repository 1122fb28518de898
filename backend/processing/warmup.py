"""Worker warm-up: a request's first-time work, done once per process before it serves any request.

A freshly forked gunicorn worker pays for what the master did not do or what does not survive a fork:
lazily imported modules, its own database connection, the collection's parsed STAC items, PROJ's
database, GDAL's drivers and dataset handles, Dask's thread pool, odc-stac's first load, the COG
writer. ``warm_up`` runs a tiny synchronous request through the engine — load_collection of 28 x 28 px
of the demo collection → ndvi → GTiff; without the demo catalog, when every collection source is a static
catalog on this machine, a few pixels of the first collection → ndvi (if it has red and nir bands) →
mean over t → GTiff; otherwise a synthetic cube → GTiff, so no remote source is contacted at start-up —
and opens the written COG with rasterio.

Each step is timed and logged. A failing step is logged and skipped: warm-up never stops a worker from
starting. Steps that would start after ``budget`` seconds are skipped, so readiness is delayed by a
bounded amount (the tiny request itself takes well under a second).
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

log = logging.getLogger(__name__)

# Imported by the request path on first use, not by create_app (so the master does not hold them).
LAZY_MODULES = ("backend.processing.loading", "backend.processing.loading.from_items")
BUDGET_S = 8.0
# 28 x 28 px of the demo's workflow-test area (tile 1, EPSG:32632), two bands, one date (2 June).
DEMO_EXTENT = {"west": 679720, "south": 5151080, "east": 680000, "north": 5151360, "crs": 32632}
DEMO_DATES = ["2022-06-01", "2022-06-10"]


def demo_graph(collection_id: str) -> dict:
    return {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": collection_id, "spatial_extent": DEMO_EXTENT, "temporal_extent": DEMO_DATES,
            "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "ndvi"}, "format": "GTiff"},
                 "result": True}}}


def warm_up(services: Any, budget: float = BUDGET_S) -> dict[str, float | str]:
    """Run the warm-up steps; returns each step's seconds (or its error text). Never raises."""
    started = time.monotonic()
    outcome: dict[str, float | str] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="openeo-warmup-") as tmp:
            work_dir = Path(tmp)
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("imports", _imports),
                ("database", lambda: _database(services)),
                ("engine", lambda: _engine(services, work_dir)),
                ("cog", lambda: _open_cog(work_dir)),
            ]
            for name, step in steps:
                if time.monotonic() - started > budget:
                    outcome[name] = f"skipped (over the {budget:g} s budget)"
                    continue
                t0 = time.monotonic()
                try:
                    step()
                    outcome[name] = round(time.monotonic() - t0, 3)
                except Exception as exc:  # noqa: BLE001  (warm-up must never keep a worker from serving)
                    outcome[name] = f"failed: {type(exc).__name__}: {exc}"
                    log.warning("worker warm-up step %s failed", name, exc_info=True)
    except OSError as exc:  # no temporary directory: nothing to warm up with
        outcome["work_dir"] = f"failed: {exc}"
        log.warning("worker warm-up skipped: %s", exc)
    total = time.monotonic() - started
    log.info("worker %d warmed up in %.2f s: %s", os.getpid(), total,
             ", ".join(f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v}" for k, v in outcome.items()))
    return outcome


def freeze_long_lived_objects() -> int:
    """Move every object alive now (modules, caches, the app: ~300,000) out of the cyclic garbage
    collector's sight; returns how many. Python's full collections scanned them all, 120-230 ms each,
    inside whichever request triggered one: 1 in ~5 small NDVI requests took 0.34 instead of 0.2 s.
    Objects frozen here are still freed by reference counting; only cycles among them would stay."""
    gc.collect()
    gc.freeze()
    count = gc.get_freeze_count()
    log.info("worker %d: %d long-lived objects frozen for the garbage collector", os.getpid(), count)
    return count


def _imports() -> None:
    for name in LAZY_MODULES:
        importlib.import_module(name)


def _database(services: Any) -> None:
    with services.db.engine.connect() as connection:  # this process's first pooled connection
        connection.exec_driver_sql("SELECT 1")


def _engine(services: Any, work_dir: Path) -> None:
    from backend.processing.engine.executor import RunContext
    from backend.processing.provenance import software_versions
    from backend.processing.sync import execute_process

    settings = services.settings
    context = RunContext(services=services, max_pixels=settings.sync_max_pixels)
    graph = _warmup_graph(services)
    if graph is not None:
        # on a slot of the requests' own (its threads then start warm), with the request's deadline rules
        with _sync_slots(services).take() as slot:
            written = execute_process(graph, services.implementations, context, work_dir, slot, timeout=BUDGET_S)
    else:
        written = _synthetic_gtiff(work_dir, settings.sync_threads)
    software_versions()  # read from the installed packages once per process (~10 ms)
    written.path.rename(work_dir / "warmup.tif")


def _warmup_graph(services: Any) -> dict | None:
    """The demo graph; else a tiny load of the first collection when every source is a static catalog on
    this machine (nothing remote is contacted at start-up); else None."""
    from backend.demo import DEMO_S2_COLLECTION

    settings = services.settings
    if settings.demo_catalog and DEMO_S2_COLLECTION in services.collections.refs():
        return demo_graph(DEMO_S2_COLLECTION)
    if settings.stac_sources and all(_on_this_machine(source) for source in settings.stac_sources):
        refs = services.collections.refs()
        if refs:
            collection_id = min(refs)
            return local_graph(collection_id, services.collections.describe(collection_id, "http://localhost/"))
    return None  # the synthetic cube


def _on_this_machine(source: Any) -> bool:
    return source.kind == "static" and urlparse(str(source.url)).scheme in ("", "file")


def local_graph(collection_id: str, metadata: dict) -> dict | None:
    """What most synchronous requests do, on a few pixels at the centre of the collection's extent and the
    first month of its time span: load → ndvi (when it has red and nir bands) → mean over t → GTiff."""
    boxes = metadata["extent"]["spatial"]["bbox"]
    box = boxes[1] if len(boxes) > 1 else boxes[0]  # STAC: [union, *sub-extents]; a union may have holes
    west, south, east, north = (box[0], box[1], box[3], box[4]) if len(box) == 6 else box
    start = metadata["extent"]["temporal"]["interval"][0][0]
    if start is None:
        return None
    lon, lat, half = (west + east) / 2, (south + north) / 2, 0.0002  # ~40 x 40 m
    first = datetime.fromisoformat(start.replace("Z", "+00:00"))
    common = {b.get("common_name"): b["name"] for b in metadata.get("summaries", {}).get("eo:bands", [])
              if isinstance(b, dict) and "name" in b}
    ndvi = "red" in common and "nir" in common
    bands = [common["red"], common["nir"]] if ndvi else None
    nodes: dict = {"load": {"process_id": "load_collection", "arguments": {
        "id": collection_id, "bands": bands,
        "spatial_extent": {"west": lon - half, "south": lat - half, "east": lon + half, "north": lat + half},
        "temporal_extent": [first.date().isoformat(), (first + timedelta(days=31)).date().isoformat()]}}}
    data = {"from_node": "load"}
    if ndvi:
        nodes["ndvi"] = {"process_id": "ndvi", "arguments": {"data": data, "nir": common["nir"], "red": common["red"]}}
        data = {"from_node": "ndvi"}
    nodes["mean"] = {"process_id": "reduce_dimension", "arguments": {"data": data, "dimension": "t", "reducer": {
        "process_graph": {"mean": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}},
                                   "result": True}}}}}
    nodes["save"] = {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"},
                     "result": True}
    return {"process_graph": nodes}


def _synthetic_gtiff(work_dir: Path, threads: int) -> Any:
    """A 64 x 64 px dask-backed cube through the GTiff writer (no data source needed)."""
    import numpy as np
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    from backend.processing.compute import ComputeScope, computing
    from backend.processing.writers import write_result

    values = np.arange(64 * 64, dtype="float32").reshape(64, 64)
    cube = xr.DataArray(values, dims=("y", "x"), coords={"y": 5151000.0 - 10 * np.arange(64) - 5,
                                                         "x": 679700.0 + 10 * np.arange(64) + 5})
    cube = cube.rio.write_crs("EPSG:32632").chunk({"x": 32, "y": 32})
    with computing(ComputeScope(threads=threads)):
        return write_result(cube, "GTiff", {}, work_dir)


def _sync_slots(services: Any) -> Any:
    from backend.processing.sync_slots import SyncSlots

    settings = services.settings
    return getattr(services, "sync_slots", None) or SyncSlots(1, settings.sync_threads, 0)


def _open_cog(work_dir: Path) -> None:
    import rasterio

    with rasterio.open(work_dir / "warmup.tif") as dataset:
        dataset.read(1, out_shape=(1, 1))
