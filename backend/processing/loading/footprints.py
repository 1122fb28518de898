"""Footprints of item grids in a foreign CRS, computed once per (grid, CRS).

odc-stac places every item on the output grid by its footprint in the output CRS (``GeoBox.footprint``:
a densified outline reprojected point by point, a few milliseconds per item), on every load. The same
items are loaded again and again (map tiles of a web service: a dozen loads per map view, all over the
same items), so the footprints are memoised: a GeoBox and a CRS are immutable and hashable, the result
depends on nothing else. Installed once, on import of the loading code.
"""

from __future__ import annotations

import functools

from odc.geo.geobox import GeoBox

CACHED_FOOTPRINTS = 4096  # small polygons; a catalog's hot items and the CRSs they are loaded in

_computed = GeoBox.footprint


@functools.lru_cache(maxsize=CACHED_FOOTPRINTS)
def _cached(gbox: GeoBox, crs, buffer: float, npoints: int, wrapdateline: bool):
    return _computed(gbox, crs, buffer, npoints, wrapdateline)


def _footprint(self: GeoBox, crs, buffer: float = 0, npoints: int = 100, wrapdateline: bool = False):
    try:
        return _cached(self, crs, buffer, npoints, wrapdateline)
    except TypeError:  # an unhashable CRS argument (e.g. a dict): computed as before
        return _computed(self, crs, buffer, npoints, wrapdateline)


def install() -> None:
    if GeoBox.footprint is not _footprint:
        GeoBox.footprint = _footprint
