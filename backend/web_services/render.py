"""One XYZ tile of a web service: its process graph evaluated with every load_collection loading straight
onto the tile's web Mercator grid (``RunContext.load_grid``), on one of this worker's sync slots under the
tile deadline, held and settled on the owner's credits like a ``POST /result``."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np

from apicore import errors
from backend.accounting.holds import place_hold
from backend.accounting.pricing import plan_for, usage_document
from backend.accounting.usage import SyncUsageMeter
from backend.api_services.processing import settle_failure
from backend.processing.compute import ComputeScope, computing
from backend.processing.engine.executor import RunContext
from backend.processing.limits import Deadline
from backend.processing.sync import evaluate
from backend.storage.models import WebService
from backend.web_services.tiles import TILE_SIZE, encode_png, tile_bounds, to_rgba, transparent_tile

WEB_MERCATOR = 3857


def render_tile(parts, service: WebService, z: int, x: int, y: int, root: str) -> bytes:
    """PNG bytes of tile z/x/y; charged to the service's owner (a tile without any data: transparent, free)."""
    settings = parts.settings
    bounds, resolution = tile_bounds(z, x, y)
    context = _context(parts, service, root, bounds, resolution)
    plan = plan_for(settings.plans, service.plan)
    ref = f"tile-{uuid.uuid4().hex}"
    what = f"tile {z}/{x}/{y} of service {service.service_id}"
    with parts.sync_slots.take() as slot:
        place_hold(parts.ledger, service.user_id, ref, plan, service.budget, settings.sync_hold)
        meter = SyncUsageMeter()
        scope = ComputeScope(threads=slot.threads, pool=slot.pool, deadline=Deadline(settings.tile_timeout),
                             callbacks=(meter,))
        started = time.perf_counter()
        try:
            with computing(scope):
                data, _, _ = evaluate(service.process, parts.implementations, context)
                bands = tile_values(data, bounds, resolution)
        except errors.OpenEOError as exc:
            if _no_data(exc):  # the tile lies outside the data: an empty map tile, nothing charged
                parts.ledger.settle(service.user_id, ref, 0, note=f"{what}: no data")
                return transparent_tile()
            settle_failure(parts.ledger, service.user_id, ref, plan, meter, context, exc, what)
            parts.service_logs.append(service.service_id, "error", f"Tile {z}/{x}/{y}: {exc.message}", code=exc.code,
                                      data={"tile": [z, x, y]})
            raise
        except BaseException as exc:
            settle_failure(parts.ledger, service.user_id, ref, plan, meter, context, exc, what)
            parts.service_logs.append(service.service_id, "error", f"Tile {z}/{x}/{y} failed: an internal error "
                                      f"({type(exc).__name__}); the operator's server log has the details.",
                                      code="Internal", data={"tile": [z, x, y]})
            raise
    png = encode_png(to_rgba(bands, value_range(bands, service.configuration)))
    usage = usage_document(meter.cpu_seconds, meter.memory_gb_seconds, context.input_values,
                           time.perf_counter() - started, len(png))
    costs = parts.ledger.settle(service.user_id, ref, plan.costs(usage), note=what)
    parts.web_services.add_costs(service.service_id, costs)
    return png


def _context(parts, service: WebService, root: str, bounds, resolution: float) -> RunContext:
    west, south, east, north = bounds
    grid = {"spatial_extent": {"west": west, "south": south, "east": east, "north": north, "crs": WEB_MERCATOR},
            "target_crs": WEB_MERCATOR, "target_resolution": resolution}
    udps, owner = parts.udps, service.user_id
    return RunContext(user_id=owner, services=parts, api_root=root, max_pixels=parts.settings.sync_max_pixels,
                      udp_lookup=lambda process_id: udps.get(owner, process_id), load_grid=grid)


def tile_values(data: Any, bounds, resolution: float) -> np.ndarray:
    """The graph's result as (1 or 3, 256, 256) floats on the tile's pixel centres (NaN where it has none)."""
    import xarray as xr

    if not isinstance(data, xr.DataArray) or not {"x", "y"} <= set(data.dims):
        raise errors.BadRequest(reason="the service's process must return a raster data cube (dimensions x and y) "
                                       "to be shown as map tiles")
    extra = [dim for dim in data.dims if dim not in ("x", "y") and data.sizes[dim] > 1]
    if len(extra) > 1 or (extra and data.sizes[extra[0]] != 3):
        shape = ", ".join(f"'{dim}' ({data.sizes[dim]} labels)" for dim in extra)
        raise errors.BadRequest(reason=f"a map tile shows one band (grey) or three (RGB), but the service's process "
                                       f"returns {shape}: reduce the other dimensions (e.g. reduce_dimension over 't')")
    west, _, _, north = bounds
    centres = (np.arange(TILE_SIZE) + 0.5) * resolution
    data = data.squeeze([dim for dim in data.dims if dim not in ("x", "y") and data.sizes[dim] == 1], drop=True)
    data = data.sortby("x").sortby("y", ascending=False)
    on_tile = data.reindex(x=west + centres, y=north - centres, method="nearest", tolerance=resolution / 2)
    values = np.asarray(on_tile.transpose(*extra, "y", "x").values, dtype="float64")
    return values.reshape(-1, TILE_SIZE, TILE_SIZE)


def value_range(bands: np.ndarray, configuration: dict | None) -> tuple[float, float]:
    """The configured ``range`` [low, high], else the tile's own minimum and maximum."""
    configured = (configuration or {}).get("range")
    if configured is not None:
        return float(configured[0]), float(configured[1])
    if np.isnan(bands).all():
        return 0.0, 1.0
    return float(np.nanmin(bands)), float(np.nanmax(bands))


def _no_data(exc: errors.OpenEOError) -> bool:
    return exc.code == "ProcessParameterInvalid" and str(exc.fields.get("reason", "")).startswith("no data")
