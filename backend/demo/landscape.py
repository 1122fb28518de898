"""Rasterise a tile layout into a static land-cover map at 10 m.

The map does not change with the date; phenology and weather are applied on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.demo import layout as L
from backend.demo.noise import fractal_noise, pixel_centres, rng
from backend.demo.spec import TileSpec

# Land-cover classes (index into the spectral tables in phenology.py).
FIELD, TRACK, FOREST, WATER, ROOF, STREET, BARE = 1, 2, 3, 4, 5, 6, 7
N_CLASSES = 8

# Share of crops in the random parcel grid (wheat, maize, sunflower, meadow, fallow).
_CROP_SHARES = (0.27, 0.25, 0.15, 0.20, 0.13)


@dataclass
class Landscape:
    cover: np.ndarray  # uint8 class per pixel
    crop: np.ndarray  # uint8 crop code for FIELD pixels (layout.WHEAT...), else 0
    shift: np.ndarray  # float32 days: per-parcel sowing offset, so parcels differ slightly
    soil: np.ndarray  # float32 soil brightness factor per parcel (~0.85-1.15)
    texture: np.ndarray  # float32 smooth static noise, within-parcel heterogeneity


def signed_distance(shape: L.Shape, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Approximate distance in px to the shape's edge on the rows x cols grid (< 0 inside)."""
    r, c = rows[:, None], cols[None, :]
    if isinstance(shape, L.Rect):
        return np.maximum(np.maximum(shape.r0 - r, r - shape.r1),
                          np.maximum(shape.c0 - c, c - shape.c1)).astype(np.float32)
    if isinstance(shape, L.Ellipse):
        rho = np.hypot((r - shape.r) / shape.ar, (c - shape.c) / shape.ac)
        return ((rho - 1.0) * min(shape.ar, shape.ac)).astype(np.float32)
    centre = shape.c + shape.amp * np.sin((r - shape.r0) / shape.period)
    across = np.abs(c - centre) - shape.width / 2
    along = np.maximum(shape.r0 - r, r - shape.r1)
    return np.maximum(across, along).astype(np.float32)


def _edges(g: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """Block boundaries covering [0, n): random sizes in [lo, hi), starting before 0."""
    edges = [-int(g.integers(0, lo))]
    while edges[-1] < n:
        edges.append(edges[-1] + int(g.integers(lo, hi)))
    return np.asarray(edges)


def _parcel_grid(tile: TileSpec, h: int, w: int, ls: Landscape) -> None:
    """Farmland: blocks of 1-2 km bounded by 20 m tracks, each split into 1-4 parallel strips."""
    g = rng(tile.seed, 1)
    yb, xb = _edges(g, h, 100, 181), _edges(g, w, 100, 181)
    i, j = np.arange(h), np.arange(w)
    bi = np.searchsorted(yb, i, side="right") - 1
    bj = np.searchsorted(xb, j, side="right") - 1
    nbx = len(xb)
    nblocks = len(yb) * nbx
    bid = bi[:, None] * nbx + bj[None, :]

    orient = g.integers(0, 2, nblocks)
    nstrips = g.integers(1, 5, nblocks)
    k = np.arange(1, 4)[None, :]
    splits = (k + g.uniform(-0.1, 0.1, (nblocks, 3))) / nstrips[:, None]
    splits[k >= nstrips[:, None]] = 2.0  # unused split positions never match
    rel_r = (i - yb[bi]) / (yb[bi + 1] - yb[bi])
    rel_c = (j - xb[bj]) / (xb[bj + 1] - xb[bj])
    rel = np.where(orient[bid] == 0, rel_r[:, None], rel_c[None, :])
    strip = (rel[..., None] > splits[bid]).sum(axis=-1)
    parcel = bid * 4 + strip

    nparcels = nblocks * 4
    crops = g.choice(np.arange(1, 6), size=nparcels, p=_CROP_SHARES).astype(np.uint8)
    ls.crop[:] = crops[parcel]
    ls.shift[:] = g.uniform(-7.0, 7.0, nparcels).astype(np.float32)[parcel]
    ls.soil[:] = g.uniform(0.85, 1.15, nparcels).astype(np.float32)[parcel]
    ls.cover[:] = FIELD
    track = ((i - yb[bi]) < 2)[:, None] | ((j - xb[bj]) < 2)[None, :]
    ls.cover[track] = TRACK
    ls.crop[track] = 0


def _paint_urban(tile: TileSpec, rect: L.Rect, rows, cols, ls: Landscape) -> None:
    """Village: 50 x 60 m cells of roofs, streets and gardens; every 4th cell row is a street."""
    inside = signed_distance(rect, rows, cols) < 0
    g = rng(tile.seed, 3)
    cell_r, cell_c = (np.arange(len(rows)) // 5), (np.arange(len(cols)) // 6)
    kinds = g.choice([ROOF, STREET, FIELD], size=(cell_r[-1] + 1, cell_c[-1] + 1), p=[0.55, 0.25, 0.2])
    kinds[::4, :] = STREET
    kind = kinds[np.ix_(cell_r, cell_c)]
    ls.cover[inside] = kind[inside]
    garden = inside & (kind == FIELD)
    ls.crop[inside] = 0
    ls.crop[garden] = L.MEADOW
    ls.shift[garden] = 0.0


def make_landscape(tile: TileSpec, lay: L.TileLayout) -> Landscape:
    h, w = tile.height, tile.width
    rows, cols = pixel_centres(h), pixel_centres(w)
    ls = Landscape(
        cover=np.zeros((h, w), np.uint8), crop=np.zeros((h, w), np.uint8),
        shift=np.zeros((h, w), np.float32), soil=np.ones((h, w), np.float32),
        texture=fractal_noise((tile.seed, 2), rows, cols, cell=40.0, octaves=2),
    )
    _parcel_grid(tile, h, w, ls)

    for n, (shape, rough) in enumerate(lay.forests):
        edge_noise = fractal_noise((tile.seed, 4, n), rows, cols, cell=40.0)
        inside = signed_distance(shape, rows, cols) + rough * edge_noise < 0
        ls.cover[inside], ls.crop[inside] = FOREST, 0
    for rect in lay.urban:
        _paint_urban(tile, rect, rows, cols, ls)
    for rect in lay.bare:
        inside = signed_distance(rect, rows, cols) < 0
        ls.cover[inside], ls.crop[inside] = BARE, 0
    if lay.fixed_block is not None:
        inside = signed_distance(lay.fixed_block, rows, cols) < 0
        ls.cover[inside], ls.crop[inside] = TRACK, 0
        for rect, crop in lay.fixed_fields:
            # Hand-placed fields get no random offset: their phenology is exactly the calendar.
            inside = signed_distance(rect, rows, cols) < 0
            ls.cover[inside], ls.crop[inside] = FIELD, crop
            ls.shift[inside], ls.soil[inside] = 0.0, 1.0
    for shape in lay.water:
        inside = signed_distance(shape, rows, cols) < 0
        ls.cover[inside], ls.crop[inside] = WATER, 0
    return ls

