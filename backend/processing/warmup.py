"""Worker warm-up: a request's first-time work, done once per process before it serves any request.

A freshly forked gunicorn worker pays for what the master did not do or what does not survive a fork:
lazily imported modules, its own database connection, the collection's parsed STAC items, PROJ's
database, GDAL's drivers and dataset handles, Dask's thread pool, odc-stac's first load, the COG
writer. ``warm_up`` runs a tiny synchronous request through the engine — load_collection of 28 x 28 px
of the demo collection → ndvi → GTiff (a synthetic cube → GTiff when the demo catalog is off, so no
remote source is contacted at start-up) — and opens the written COG with rasterio.

Each step is timed and logged. A failing step is logged and skipped: warm-up never stops a worker from
starting. Steps that would start after ``budget`` seconds are skipped, so readiness is delayed by a
bounded amount (the tiny request itself takes well under a second).
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

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


def _imports() -> None:
    for name in LAZY_MODULES:
        importlib.import_module(name)


def _database(services: Any) -> None:
    with services.db.engine.connect() as connection:  # this process's first pooled connection
        connection.exec_driver_sql("SELECT 1")


def _engine(services: Any, work_dir: Path) -> None:
    from backend.demo import DEMO_S2_COLLECTION
    from backend.processing.engine.executor import RunContext
    from backend.processing.sync import execute_process

    settings = services.settings
    context = RunContext(services=services, max_pixels=settings.sync_max_pixels)
    if settings.demo_catalog and DEMO_S2_COLLECTION in services.collections.refs():
        # on a slot of the requests' own (its threads then start warm), with the request's deadline rules
        with _sync_slots(services).take() as slot:
            written = execute_process(demo_graph(DEMO_S2_COLLECTION), services.implementations, context, work_dir,
                                      slot, timeout=BUDGET_S)
    else:
        written = _synthetic_gtiff(work_dir, settings.sync_threads)
    written.path.rename(work_dir / "warmup.tif")


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
