"""Synthetic elevation: a valley along the tile's main river between smooth hills.

Water comes from the same layout as the S2 land cover: rivers run along the valley floor and
lakes/ponds are level surfaces, so the DEM agrees with where the imagery shows water.
"""

from __future__ import annotations

import numpy as np

from backend.demo import layout as L
from backend.demo.landscape import signed_distance
from backend.demo.noise import fractal_noise, pixel_centres
from backend.demo.spec import DEM_BAND, TileSpec


def elevation(tile: TileSpec, lay: L.TileLayout, res: int = DEM_BAND.resolution) -> np.ndarray:
    """int16 metres on the tile's `res` grid (upper-left aligned with the S2 grid)."""
    return np.round(surface_heights(tile, lay, res)).astype(np.int16)


def surface_heights(tile: TileSpec, lay: L.TileLayout, res: int) -> np.ndarray:
    """float64 metres on the tile's `res` grid, unrounded (slopes without 1 m steps)."""
    h, w = tile.shape(res)
    rows, cols = pixel_centres(h, res), pixel_centres(w, res)
    floor = lay.floor_m - lay.floor_slope_m_per_px * rows[:, None]

    # Distance from the river centre line (ignoring its row range: the valley continues).
    river = lay.valley
    centre = river.c + river.amp * np.sin((rows[:, None] - river.r0) / river.period)
    dist = np.abs(cols[None, :] - centre)
    rise = 1.0 - np.exp(-((dist / lay.wall_width_px) ** 2))  # 0 on the valley floor

    relief = lay.wall_height_m * rise
    for hill in lay.hills:
        d2 = (rows[:, None] - hill.r) ** 2 + (cols[None, :] - hill.c) ** 2
        relief = relief + hill.height * np.exp(-d2 / (2 * hill.radius**2))
    relief = relief + 25.0 * fractal_noise((tile.seed, 30), rows, cols, cell=60.0)
    # Hills and noise fade out towards the river so the floor stays flat and drains south.
    z = floor + np.maximum(relief * rise, 0.0)

    for shape in lay.water:
        inside = signed_distance(shape, rows, cols) < 0
        if isinstance(shape, L.Ellipse) and inside.any():
            z[inside] = np.min(z[inside])  # lakes and ponds: a level surface
    return z
