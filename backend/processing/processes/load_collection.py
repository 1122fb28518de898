"""load_collection: collection metadata from the catalog, pixels from backend.processing.loading."""

from __future__ import annotations

from typing import Any

from backend.processing.limits import check_cube_size


def load_collection(id: str, spatial_extent: dict | None, temporal_extent: list | None,
                    bands: list[str] | None = None, properties: dict | None = None, *, run_context) -> Any:
    from backend.processing.loading import load_collection_cube

    catalog = run_context.services.collections
    ref = catalog.ref(id)
    metadata = catalog.describe(id, run_context.api_root)
    grid = run_context.load_grid or {}
    spatial_extent = grid.get("spatial_extent", spatial_extent)
    filters = {name: _predicate(callback) for name, callback in (properties or {}).items()}
    cube = load_collection_cube(ref, metadata, spatial_extent, temporal_extent, bands, filters or None,
                                target_crs=grid.get("target_crs"), target_resolution=grid.get("target_resolution"),
                                max_values=run_context.max_pixels,  # checked from the grid, before the graph
                                on_items=lambda items: run_context.record_items(id, items))
    check_cube_size(cube, run_context.max_pixels, "load_collection")
    run_context.input_values += int(cube.size)
    return cube


def _predicate(callback):
    """A property filter (child process graph with parameter ``value``) as a Python predicate."""
    return lambda value: bool(callback.with_parameters(value=value))
