"""Zonal statistics on a regular grid, the engine of aggregate_spatial (no openEO or xarray here).

Two steps, so that the costly geometry work happens once however many dates and bands there are:

1. :func:`memberships` — every geometry's pixels, rasterised ONCE on the grid with
   ``rasterio.features.rasterize``: polygons with pixel-centre semantics (``all_touched=False``; a pixel
   belongs to a polygon when its centre lies inside), points and lines with every pixel they touch (the
   pixel whose centre is the closest). Pixels may belong to several geometries: geometries whose
   interiors overlap are burned in different layers (greedy colouring of the overlap graph, computed
   with an STRtree), each layer over the smallest window holding its geometries, in blocks of at most
   ``BLOCK``² pixels so the label image stays small. The result is a compact membership list
   (pixel index, grouped by geometry) over the window that holds all geometries.
2. :class:`GroupedReducer` — per date and band, the window's values gathered at the member pixels and
   reduced per geometry with grouped kernels: ``np.bincount`` (count, sum, mean, variance, sd),
   ``ufunc.reduceat`` (min, max) and one ``np.lexsort`` (median). NaN is no-data: excluded; a geometry
   without a valid pixel gets NaN (count: 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

# Largest label image rasterised at once (pixels per side).
BLOCK = 4096
# More candidate overlap pairs than this: skip the colouring and burn every geometry alone.
MAX_OVERLAP_PAIRS = 1_000_000
# Pixel memberships (pixel × geometry) beyond this are refused (8 bytes each, plus the gathered values).
MAX_MEMBERSHIPS = 100_000_000

POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)
FAST_REDUCERS = ("mean", "sum", "count", "min", "max", "median", "sd", "variance")


class TooManyPixels(ValueError):
    """The geometries cover more pixel memberships than MAX_MEMBERSHIPS."""


@dataclass(frozen=True)
class Grid:
    """A regular grid: the affine transform of its pixel edges and its size."""

    transform: Affine
    height: int
    width: int


@dataclass(frozen=True)
class Memberships:
    """Geometry ``z`` owns the window pixels ``pixels[starts[z]:starts[z+1]]`` (flat, row-major indices
    into the window rows ``row0:row1`` × cols ``col0:col1`` of the grid)."""

    row0: int
    row1: int
    col0: int
    col1: int
    pixels: np.ndarray  # int64
    starts: np.ndarray  # int64, n + 1

    @property
    def n(self) -> int:
        return len(self.starts) - 1

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.starts)

    @property
    def window_shape(self) -> tuple[int, int]:
        return self.row1 - self.row0, self.col1 - self.col0

    @property
    def empty_window(self) -> bool:
        return self.row1 <= self.row0 or self.col1 <= self.col0

    def zones(self) -> np.ndarray:
        return np.repeat(np.arange(self.n, dtype=np.int64), self.sizes)


# --- step 1: memberships ------------------------------------------------------------------------


def memberships(geoms: np.ndarray, grid: Grid, block: int = BLOCK,
                max_memberships: int = MAX_MEMBERSHIPS) -> Memberships:
    """Pixels of every geometry (shapely, in the grid's CRS; None/empty → no pixels)."""
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    boxes = _pixel_boxes(geoms, grid)  # (n, 4) row0, row1, col0, col1, clipped; empty rows for no pixels
    active = np.flatnonzero((boxes[:, 1] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 2]))
    if active.size == 0:
        return Memberships(0, 0, 0, 0, np.zeros(0, np.int64), np.zeros(n + 1, np.int64))
    row0, row1 = int(boxes[active, 0].min()), int(boxes[active, 1].max())
    col0, col1 = int(boxes[active, 2].min()), int(boxes[active, 3].max())
    width = col1 - col0

    types = shapely.get_type_id(geoms[active])
    polygonal = np.isin(types, POLYGONAL)
    pixel_parts, zone_parts, total = [], [], 0
    for subset, all_touched in ((active[polygonal], False), (active[~polygonal], True)):
        if subset.size == 0:
            continue
        for layer in _layers(geoms, subset, grid, all_touched):
            for rows, cols, zones in _burn_layer(geoms, layer, boxes, grid, all_touched, block):
                total += zones.size
                if total > max_memberships:
                    raise TooManyPixels(f"the geometries cover more than {max_memberships:,} pixels in total")
                pixel_parts.append((rows - row0).astype(np.int64) * width + (cols - col0))
                zone_parts.append(zones)
    pixels = np.concatenate(pixel_parts) if pixel_parts else np.zeros(0, np.int64)
    zones = np.concatenate(zone_parts) if zone_parts else np.zeros(0, np.int64)
    order = np.argsort(zones, kind="stable")
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(zones, minlength=n), out=starts[1:])
    return Memberships(row0, row1, col0, col1, pixels[order], starts)


def _pixel_boxes(geoms: np.ndarray, grid: Grid) -> np.ndarray:
    """Half-open pixel ranges (row0, row1, col0, col1) that may hold each geometry's pixels, clipped to the
    grid, one pixel of slack on each side (the exact pixels are rasterize's business)."""
    bounds = shapely.bounds(geoms)  # NaN for None / empty
    finite = np.isfinite(bounds).all(axis=1)
    inverse = ~grid.transform
    xs = bounds[:, [0, 2, 0, 2]]
    ys = bounds[:, [1, 1, 3, 3]]
    cols, rows = inverse @ (xs, ys)
    cols, rows = np.asarray(cols), np.asarray(rows)
    out = np.zeros((len(geoms), 4), np.int64)
    with np.errstate(invalid="ignore"):
        out[finite, 0] = np.clip(np.floor(rows[finite].min(axis=1)) - 1, 0, grid.height)
        out[finite, 1] = np.clip(np.ceil(rows[finite].max(axis=1)) + 1, 0, grid.height)
        out[finite, 2] = np.clip(np.floor(cols[finite].min(axis=1)) - 1, 0, grid.width)
        out[finite, 3] = np.clip(np.ceil(cols[finite].max(axis=1)) + 1, 0, grid.width)
    return out


def _layers(geoms: np.ndarray, subset: np.ndarray, grid: Grid, all_touched: bool) -> list[np.ndarray]:
    """``subset`` split into groups that can be burned in one rasterize call without one geometry taking
    a pixel of another: polygons whose interiors do not overlap; points/lines farther apart than two
    pixel diagonals. Greedy colouring in index order; every geometry alone if the overlap graph is huge."""
    pairs = _conflicts(geoms[subset], grid, all_touched)
    if pairs is None:
        return [subset[i:i + 1] for i in range(subset.size)]
    colour = np.zeros(subset.size, np.int64)
    if pairs.shape[1]:
        neighbours: dict[int, list[int]] = {}
        for i, j in zip(*pairs.tolist()):  # i < j: j looks back at i
            neighbours.setdefault(j, []).append(i)
        for j in sorted(neighbours):
            taken = {int(colour[i]) for i in neighbours[j]}
            c = 0
            while c in taken:
                c += 1
            colour[j] = c
    return [subset[colour == c] for c in range(int(colour.max()) + 1)]


def _conflicts(geoms: np.ndarray, grid: Grid, all_touched: bool) -> np.ndarray | None:
    """(2, k) index pairs i < j of geometries that may claim a common pixel; None if there are more than
    MAX_OVERLAP_PAIRS (queried in batches so that many identical geometries cannot exhaust memory)."""
    tree = shapely.STRtree(geoms)
    n = len(geoms)
    batch = max(1, min(n, 4_000_000 // max(n, 1)))
    found, total = [], 0
    pixel_diagonal = float(np.hypot(grid.transform.a, grid.transform.e) + np.hypot(grid.transform.b, grid.transform.d))
    for start in range(0, n, batch):
        chunk = geoms[start:start + batch]
        try:
            if all_touched:
                pairs = tree.query(chunk, predicate="dwithin", distance=2 * pixel_diagonal)
            else:
                pairs = tree.query(chunk, predicate="intersects")
        except shapely.errors.GEOSException:  # invalid geometries: overlapping bounding boxes (conservative)
            pairs = tree.query(shapely.buffer(shapely.envelope(chunk), 2 * pixel_diagonal) if all_touched else
                               shapely.envelope(chunk))
        pairs[0] += start
        pairs = pairs[:, pairs[0] < pairs[1]]
        if not all_touched and pairs.shape[1]:
            try:  # interiors overlap = intersects and not only touches
                pairs = pairs[:, ~shapely.touches(geoms[pairs[0]], geoms[pairs[1]])]
            except shapely.errors.GEOSException:  # invalid geometry: keep every candidate (still correct)
                pass
        total += pairs.shape[1]
        if total > MAX_OVERLAP_PAIRS:
            return None
        found.append(pairs)
    return np.concatenate(found, axis=1) if found else np.zeros((2, 0), np.int64)


def _burn_layer(geoms: np.ndarray, layer: np.ndarray, boxes: np.ndarray, grid: Grid, all_touched: bool,
                block: int):
    """Yield (rows, cols, zones) of the pixels of the geometries ``layer`` (indices into geoms), which do not
    compete for pixels, rasterised per block over the union of their pixel boxes within the block."""
    from rasterio.features import rasterize

    lb = boxes[layer]
    shapes = _geojson_like(geoms[layer])
    r_lo, r_hi, c_lo, c_hi = int(lb[:, 0].min()), int(lb[:, 1].max()), int(lb[:, 2].min()), int(lb[:, 3].max())
    for br in range(r_lo, r_hi, block):
        for bc in range(c_lo, c_hi, block):
            inside = np.flatnonzero((lb[:, 0] < br + block) & (lb[:, 1] > br) & (lb[:, 2] < bc + block) & (lb[:, 3] > bc))
            if inside.size == 0:
                continue
            sr0, sr1 = max(br, int(lb[inside, 0].min())), min(br + block, int(lb[inside, 1].max()))
            sc0, sc1 = max(bc, int(lb[inside, 2].min())), min(bc + block, int(lb[inside, 3].max()))
            labels = rasterize(((shapes[k], int(layer[k]) + 1) for k in inside), out_shape=(sr1 - sr0, sc1 - sc0),
                               transform=grid.transform @ Affine.translation(sc0, sr0), fill=0,
                               all_touched=all_touched, dtype="int32")
            flat = labels.ravel()
            hits = np.flatnonzero(flat)
            if hits.size:
                rows, cols = np.divmod(hits, sc1 - sc0)
                yield rows + sr0, cols + sc0, flat[hits].astype(np.int64) - 1


def _geojson_like(geoms: np.ndarray) -> list[dict]:
    """GeoJSON-like dicts with numpy coordinate arrays for rasterize (several times faster than
    ``__geo_interface__``, which builds nested tuples of Python floats)."""
    types = shapely.get_type_id(geoms)
    if not np.isin(types, POLYGONAL).all():
        return [shapely.geometry.mapping(g) for g in geoms]
    kind, coords, offsets = shapely.to_ragged_array(geoms)
    if kind == shapely.GeometryType.POLYGON:
        ring_offsets, polygon_offsets = offsets
        rings = np.split(coords, ring_offsets[1:-1])
        return [{"type": "Polygon", "coordinates": rings[polygon_offsets[g]:polygon_offsets[g + 1]]}
                for g in range(len(geoms))]
    ring_offsets, part_offsets, geom_offsets = offsets
    rings = np.split(coords, ring_offsets[1:-1])
    parts = [rings[part_offsets[p]:part_offsets[p + 1]] for p in range(len(part_offsets) - 1)]
    return [{"type": "MultiPolygon", "coordinates": parts[geom_offsets[g]:geom_offsets[g + 1]]}
            for g in range(len(geoms))]


# --- step 2: grouped reductions -------------------------------------------------------------------


class GroupedReducer:
    """Reductions per geometry of values gathered at the member pixels (``values[k]`` belongs to
    geometry ``zones[k]``; zones sorted ascending, as :class:`Memberships` lays them out)."""

    def __init__(self, members: Memberships):
        self.n = members.n
        self.starts = members.starts
        self.zones = members.zones()
        self.sizes = members.sizes
        self._nonempty = np.flatnonzero(self.sizes > 0)

    def valid_count(self, values: np.ndarray) -> np.ndarray:
        if not np.issubdtype(values.dtype, np.floating):
            return self.sizes.copy()
        return np.bincount(self.zones[~np.isnan(values)], minlength=self.n).astype(np.int64)

    def reduce(self, op: str, values: np.ndarray, count: np.ndarray | None = None) -> np.ndarray:
        """One value per geometry: int64 for count, float64 for sum/mean/sd/variance, the values' dtype
        (float) for min/max/median; NaN where a geometry has no valid value (count: 0)."""
        if count is None:
            count = self.valid_count(values)
        if op == "count":
            return count
        floating = np.issubdtype(values.dtype, np.floating)
        if not floating:
            values = values.astype(np.float64)
        valid = ~np.isnan(values)
        empty = count == 0
        if op in ("sum", "mean", "sd", "variance"):
            sums = np.bincount(self.zones, weights=np.where(valid, values, 0.0), minlength=self.n)
            if op == "sum":
                sums[empty] = np.nan
                return sums
            with np.errstate(invalid="ignore", divide="ignore"):
                means = sums / count
            if op == "mean":
                return means
            deviation = np.where(valid, values - means[self.zones], 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                variance = np.bincount(self.zones, weights=deviation * deviation, minlength=self.n) / (count - 1)
            variance[count < 2] = np.nan
            return variance if op == "variance" else np.sqrt(variance)
        if op in ("min", "max"):
            out = np.full(self.n, np.nan, dtype=values.dtype)
            if self._nonempty.size:
                fill = np.inf if op == "min" else -np.inf
                ufunc = np.minimum if op == "min" else np.maximum
                out[self._nonempty] = ufunc.reduceat(np.where(valid, values, fill), self.starts[self._nonempty])
            out[empty] = np.nan
            return out
        if op == "median":
            out = np.full(self.n, np.nan, dtype=values.dtype)
            ordered = values[np.lexsort((values, self.zones))]  # per geometry ascending, NaN last
            has = ~empty
            low = self.starts[:-1][has] + (count[has] - 1) // 2
            high = self.starts[:-1][has] + count[has] // 2
            out[has] = (ordered[low].astype(np.float64) + ordered[high]) / 2
            return out
        raise ValueError(f"unknown grouped reduction {op!r}")
