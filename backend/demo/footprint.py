"""Item footprints: the valid-data area of a tile as a WGS84 GeoJSON polygon plus its bbox."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyproj
import shapely
import shapely.affinity
from shapely.geometry import Polygon, box
from shapely.geometry.polygon import orient

from backend.demo.spec import TileSpec

_DECIMALS = 7  # ~1 cm; rounding keeps the JSON short and stable


@lru_cache(maxsize=None)
def _to_wgs84(epsg: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(epsg, 4326, always_xy=True)


def _valid_pixels(tile: TileSpec, orbit_edge: tuple[float, float, str] | None) -> Polygon:
    """Valid area in 10 m pixel coordinates (x = col, y = row)."""
    area = box(0, 0, tile.width, tile.height)
    if orbit_edge is None:
        return area
    a, b, side = orbit_edge
    far = 1e6
    line = [(a + b * -far, -far), (a + b * far, far)]  # (col, row) along the swath edge
    outside = -far if side == "east" else far  # the half-plane that keeps data
    half = Polygon(line + [(outside, far), (outside, -far)])
    return area.intersection(half)


def footprint(tile: TileSpec, orbit_edge: tuple[float, float, str] | None = None,
              res: int = 10) -> tuple[dict, list[float]]:
    """GeoJSON geometry and bbox (WGS84) of the tile's data on the `res` grid."""
    px = _valid_pixels(tile, orbit_edge)
    if res != 10:  # coarser grids (DEM) may extend past the 10 m tile: use their real size
        h, w = tile.shape(res)
        px = box(0, 0, w * res / 10, h * res / 10)
    utm = shapely.affinity.affine_transform(px, [10, 0, 0, -10, tile.x0, tile.y0])
    # Densify so the UTM edges stay straight-ish after projecting to lon/lat.
    utm = shapely.segmentize(utm, 2000.0)
    to_geo = _to_wgs84(tile.epsg)
    geo = shapely.transform(utm, lambda xy: np.column_stack(to_geo.transform(xy[:, 0], xy[:, 1])))
    geo = orient(geo, 1.0)  # RFC 7946: exterior ring counter-clockwise
    ring = [[round(x, _DECIMALS), round(y, _DECIMALS)] for x, y in geo.exterior.coords]
    geojson = {"type": "Polygon", "coordinates": [ring]}
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return geojson, [min(xs), min(ys), max(xs), max(ys)]
