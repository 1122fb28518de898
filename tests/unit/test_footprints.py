"""Memoised item footprints (backend/processing/loading/footprints.py): same polygons, computed once."""

from __future__ import annotations

from odc.geo.geobox import GeoBox

import backend.processing.loading.odc_load  # noqa: F401  (installs the memo, as every load does)
from backend.processing.loading import footprints


def test_footprints_equal_the_computed_ones_and_are_computed_once():
    grid = GeoBox.from_bbox((675000, 5145000, 687800, 5157800), "EPSG:32632", resolution=10)
    in_mercator = grid.footprint("EPSG:3857", wrapdateline=True)
    computed = footprints._computed(grid, "EPSG:3857", 0, 100, True)
    assert in_mercator.crs == computed.crs and in_mercator.geom.equals_exact(computed.geom, 1e-6)
    assert grid.footprint("EPSG:3857", wrapdateline=True) is in_mercator  # from the memo
    same_grid = GeoBox.from_bbox((675000, 5145000, 687800, 5157800), "EPSG:32632", resolution=10)
    assert same_grid.footprint("EPSG:3857", wrapdateline=True) is in_mercator  # equal grids share it
    in_wgs84 = grid.footprint("EPSG:4326")
    assert in_wgs84.crs.epsg == 4326 and 11.2 < in_wgs84.centroid.points[0][0] < 11.5  # another CRS: its own


def test_an_unhashable_crs_argument_is_computed_as_before():
    grid = GeoBox.from_bbox((0, 0, 1000, 1000), "EPSG:32632", resolution=10)
    projjson = grid.crs.proj.to_json_dict()  # a dict: odc-geo takes it, the memo cannot hash it
    footprint = grid.footprint(projjson)
    assert footprint.geom.equals_exact(footprints._computed(grid, projjson).geom, 1e-6)
    assert grid.footprint(projjson) is not footprint  # computed again, not memoised
