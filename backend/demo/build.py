"""Generate the whole demo catalog (rasters + STAC JSON) into an empty directory."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pystac
from pystac.stac_io import DefaultStacIO

from backend.demo import metadata as M
from backend.demo import spec as S
from backend.demo.backscatter import RadarGround, radar_ground, render_s1
from backend.demo.cog import write_cog
from backend.demo.footprint import footprint
from backend.demo.landscape import make_landscape
from backend.demo.layout import LAYOUTS
from backend.demo.scene import render_s2
from backend.demo.terrain import elevation


class _Stac10IO(DefaultStacIO):
    """Writes STAC 1.0.0 with stable formatting (pystac itself would stamp 1.1.0).

    Our objects only use fields that are valid in 1.0.0; formatting is fixed here (not left to
    orjson-if-installed) so the bytes do not depend on optional packages.
    """

    def json_dumps(self, json_dict: dict, *args, **kwargs) -> str:
        json_dict = {**json_dict, "stac_version": "1.0.0"}
        return json.dumps(json_dict, indent=2, ensure_ascii=False) + "\n"


def _write_s2_item(root: Path, tile: S.TileSpec, landscape, date: dt.date) -> pystac.Item:
    lay = LAYOUTS[tile.id]
    scene = render_s2(tile, lay, landscape, date)
    item_dir = root / S.DEMO_S2_COLLECTION / S.s2_item_id(tile, date)
    item_dir.mkdir(parents=True)
    for band in S.S2_BANDS:
        write_cog(item_dir / f"{band.name}.tif", scene.bands[band.name], epsg=tile.epsg,
                  transform=tile.transform(band.resolution), nodata=band.nodata,
                  categorical=band.name == "SCL", description=band.name)
    geom, bbox = footprint(tile, lay.orbit_edge if scene.has_nodata else None)
    return M.s2_item(tile, date, scene.cloud_cover, geom, bbox)


def _write_s1_item(root: Path, tile: S.TileSpec, ground: RadarGround, date: dt.date) -> pystac.Item:
    lay = LAYOUTS[tile.id]
    bands = render_s1(tile, lay, ground, date)
    item_dir = root / S.DEMO_S1_COLLECTION / S.s1_item_id(tile, date)
    item_dir.mkdir(parents=True)
    for band in S.S1_BANDS:
        write_cog(item_dir / f"{band.name}.tif", bands[band.name], epsg=tile.epsg,
                  transform=tile.transform(band.resolution), nodata=band.nodata, categorical=False,
                  description=band.name)
    geom, bbox = footprint(tile, lay.s1_swath_edge)  # the 20 m grid covers the 10 m tile exactly
    return M.s1_item(tile, date, geom, bbox)


def _write_dem_item(root: Path, tile: S.TileSpec) -> pystac.Item:
    band = S.DEM_BAND
    item_dir = root / S.DEMO_DEM_COLLECTION / S.dem_item_id(tile)
    item_dir.mkdir(parents=True)
    write_cog(item_dir / f"{band.name}.tif", elevation(tile, LAYOUTS[tile.id]), epsg=tile.epsg,
              transform=tile.transform(band.resolution), nodata=band.nodata, categorical=False,
              description=band.name)
    geom, bbox = footprint(tile, res=band.resolution)
    return M.dem_item(tile, geom, bbox)


def build_catalog(root: Path, dates: Sequence[dt.date] = S.S2_DATES,
                  tiles: Sequence[S.TileSpec] = S.TILES, s1_dates: Sequence[dt.date] = S.S1_DATES) -> Path:
    """Write everything under `root` (must not exist or be empty); returns catalog.json.

    `dates` (S2), `s1_dates` and `tiles` subsets exist for tests: an item's bytes depend only on
    its tile and date, never on which other items are generated.
    """
    root.mkdir(parents=True, exist_ok=True)
    landscapes = {t.id: make_landscape(t, LAYOUTS[t.id]) for t in tiles}
    jobs = [(t, d) for t in tiles for d in dates]
    s1_jobs = [(t, d) for t in tiles if t in S.S1_TILES for d in s1_dates]
    grounds = {t.id: radar_ground(t, LAYOUTS[t.id], landscapes[t.id]) for t in {t for t, _ in s1_jobs}}
    # GDAL compression and most numpy work release the GIL, so threads overlap usefully.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        s2_futures = [pool.submit(_write_s2_item, root, t, landscapes[t.id], d) for t, d in jobs]
        dem_futures = [pool.submit(_write_dem_item, root, t) for t in tiles]
        s1_futures = [pool.submit(_write_s1_item, root, t, grounds[t.id], d) for t, d in s1_jobs]
        s2_items = [f.result() for f in s2_futures]
        dem_items = [f.result() for f in dem_futures]
        s1_items = [f.result() for f in s1_futures]

    cat = M.catalog()
    # A collection without items only happens in tests that build a subset (no dates of it).
    if s2_items:
        cat.add_child(M.s2_collection([[i for (t, _), i in zip(jobs, s2_items) if t is tile] for tile in tiles]))
    if s1_items:
        cat.add_child(M.s1_collection([[i for (t, _), i in zip(s1_jobs, s1_items) if t is tile] for tile in tiles]))
    cat.add_child(M.dem_collection([[i] for i in dem_items]))
    # Pass the file, not the dir: pystac treats a dir name containing a dot as a file name.
    cat.normalize_hrefs(str(root / "catalog.json"))
    cat.save(pystac.CatalogType.SELF_CONTAINED, stac_io=_Stac10IO())
    return root / "catalog.json"
