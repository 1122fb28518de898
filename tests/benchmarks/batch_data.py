"""Benchmark data for the batch-job memory benchmark: a larger synthetic STAC collection (static catalog).

A grid of ``grid`` x ``grid`` adjacent tiles (default 2 x 2 of 3700 x 3700 px = 7400 x 7400 px at 10 m,
EPSG:32632) on the demo's 10 dates (2022-04-18 … 09-15), bands B04 and B08: 40 items, 80 COGs (uint16,
DEFLATE + horizontal predictor, 512 px tiles, overviews, nodata 0; ``raster:bands`` scale 0.0001), up to
10 x 2 x 7400² = 1.1e9 values. A load over the whole grid mosaics four items per date; smaller loads are
windows centred on the grid (:func:`window`), so every size reads from all four tiles.

The pixels come from the NDVI benchmark's generator (``ndvi_data.py``: ``backend.demo``'s landscape,
phenology, clouds and swath edge with the demo's tile-1 layout scaled to the tile size); each tile has its
own seed, so the tiles differ. The demo's orbit-edge dates give every tile a no-data wedge on 4 dates.

Deterministic; generated once (~3 min on 2 cores, ~1 GB) into ``<data-dir>/batch-catalog[-<tile>x<grid>]``
with the demo catalog's atomic build-and-marker mechanism and reused while this file, ``ndvi_data.py``, the
demo generator and the parameters are unchanged.

    .venv/bin/python tests/benchmarks/batch_data.py --data-dir /tmp/openeo-bench   # prints catalog.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
for path in (str(REPO_ROOT), str(HERE)):
    if path not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, path)

import pystac  # noqa: E402

import ndvi_data  # noqa: E402
from backend.demo.ensure import ensure_built, generator_fingerprint  # noqa: E402
from backend.demo.footprint import footprint  # noqa: E402
from backend.demo.landscape import make_landscape  # noqa: E402
from backend.demo.scene import render_s2  # noqa: E402
from backend.demo.spec import S2_DATES, TileSpec, acquisition_datetime  # noqa: E402

COLLECTION = "S2_BATCH_BENCH"
CATALOG_DIR = "batch-catalog"
DEFAULT_TILE = 3700  # px; even, so tile origins stay multiples of 20 m
DEFAULT_GRID = 2
EPSG = ndvi_data.EPSG
X0, Y0 = ndvi_data.X0, ndvi_data.Y0  # upper-left corner of the grid
SEED = 4004
BANDS = tuple(ndvi_data.BANDS)  # B04, B08
DATES = S2_DATES  # the demo's 10 dates, April to September 2022


def tiles(tile_px: int = DEFAULT_TILE, grid: int = DEFAULT_GRID) -> list[TileSpec]:
    return [TileSpec(f"R{row}C{col}", EPSG, X0 + col * tile_px * 10, Y0 - row * tile_px * 10, tile_px, tile_px,
                     seed=SEED + row * grid + col)
            for row in range(grid) for col in range(grid)]


def window(values: float, tile_px: int = DEFAULT_TILE, grid: int = DEFAULT_GRID,
           dates: int = len(DATES), bands: int = len(BANDS)) -> tuple[tuple[float, float, float, float], int]:
    """(west, south, east, north) in EPSG:32632 of the square window, centred on the grid and on its pixel
    grid, whose load holds at least ``values`` values (dates x bands x side²); and its side in px."""
    side = math.ceil(math.sqrt(values / (dates * bands)))
    total = tile_px * grid
    if side > total:
        raise ValueError(f"{values:.3g} values need a {side} px window; the grid is {total} px wide "
                         "(use a larger --tile or --grid)")
    west = X0 + (total - side) // 2 * 10
    north = Y0 - (total - side) // 2 * 10
    return (west, north - side * 10, west + side * 10, north), side


def _render(root: Path, tile: TileSpec, layout, landscape, date: dt.date) -> pystac.Item:
    scene = render_s2(tile, layout, landscape, date)
    item_id = f"BATCH_BENCH_{tile.id}_{date:%Y%m%d}"
    item_dir = root / COLLECTION / item_id
    item_dir.mkdir(parents=True)
    for name in BANDS:
        ndvi_data.write_cog(item_dir / f"{name}.tif", scene.bands[name], tile, name)
    geometry, bbox = footprint(tile, layout.orbit_edge if scene.has_nodata else None)
    props = {"platform": "sentinel-2 (synthetic)", "gsd": 10, "proj:epsg": tile.epsg,
             "proj:code": f"EPSG:{tile.epsg}", "proj:shape": [tile.height, tile.width],
             "proj:transform": list(tile.transform(10)), "proj:bbox": list(tile.bounds(10)),
             "tile": tile.id}
    item = pystac.Item(id=item_id, geometry=geometry, bbox=bbox, datetime=acquisition_datetime(date),
                       properties=props, stac_extensions=[ndvi_data.EXT_EO, ndvi_data.EXT_RASTER, ndvi_data.EXT_PROJ])
    for name in BANDS:
        item.add_asset(name, pystac.Asset(href=f"./{name}.tif", media_type=ndvi_data.COG_TYPE, roles=["data"],
                                          extra_fields=ndvi_data._band_fields(name)))
    return item


def build(root: Path, tile_px: int = DEFAULT_TILE, grid: int = DEFAULT_GRID, dates=DATES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    layout = ndvi_data.bench_layout(tile_px)
    items: list[pystac.Item] = []
    for tile in tiles(tile_px, grid):
        landscape = make_landscape(tile, layout)
        # ~1 GB per date in flight at 3700 px; two at a time on two cores
        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            items += pool.map(lambda d: _render(root, tile, layout, landscape, d), dates)
        del landscape
        print(f"  tile {tile.id} done", file=sys.stderr)
    union = [min(i.bbox[0] for i in items), min(i.bbox[1] for i in items),
             max(i.bbox[2] for i in items), max(i.bbox[3] for i in items)]
    times = [i.datetime for i in items]
    size = tile_px * grid
    collection = pystac.Collection(
        id=COLLECTION, title="Batch-job benchmark grid (SYNTHETIC)", license="CC0-1.0",
        description=f"SYNTHETIC Sentinel-2-like B04/B08: {grid} x {grid} tiles of {tile_px} x {tile_px} px "
                    f"({size} x {size} px) at 10 m in EPSG:{EPSG}, {len(dates)} dates; uint16 DN = reflectance x "
                    "10000, nodata 0. Generated by tests/benchmarks/batch_data.py; not real observations.",
        extent=pystac.Extent(pystac.SpatialExtent([union]), pystac.TemporalExtent([[min(times), max(times)]])),
        summaries=pystac.Summaries({"eo:bands": [{**ndvi_data._band_fields(n)["eo:bands"][0], "gsd": 10}
                                                 for n in BANDS],
                                    "gsd": [10], "proj:epsg": [EPSG], "proj:code": [f"EPSG:{EPSG}"]}),
        stac_extensions=[ndvi_data.EXT_EO, ndvi_data.EXT_RASTER, ndvi_data.EXT_PROJ, ndvi_data.EXT_ITEM_ASSETS],
        extra_fields={"item_assets": {n: {"type": ndvi_data.COG_TYPE, "roles": ["data"], **ndvi_data._band_fields(n)}
                                      for n in BANDS}},
    )
    collection.add_items(items)
    catalog = pystac.Catalog(id="batch-bench", description="Synthetic data for tests/benchmarks/bench_batch_memory.py")
    catalog.add_child(collection)
    catalog.normalize_hrefs(str(root / "catalog.json"))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    (root / "params.json").write_text(json.dumps({"tile": tile_px, "grid": grid,
                                                  "dates": [str(d) for d in dates]}) + "\n")
    return root / "catalog.json"


def fingerprint(tile_px: int, grid: int, dates) -> str:
    """This file + ndvi_data.py + the demo generator's sources + the parameters: any change regenerates."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update((HERE / "ndvi_data.py").read_bytes())
    digest.update(generator_fingerprint().encode())
    digest.update(json.dumps({"tile": tile_px, "grid": grid, "dates": [str(d) for d in dates]}).encode())
    return f"batch-bench-{digest.hexdigest()[:16]}"


def ensure_catalog(data_dir: Path, tile_px: int = DEFAULT_TILE, grid: int = DEFAULT_GRID, dates=DATES) -> Path:
    """``<data_dir>/batch-catalog/catalog.json``, generated first if missing or outdated (minutes)."""
    name = CATALOG_DIR if (tile_px, grid) == (DEFAULT_TILE, DEFAULT_GRID) else f"{CATALOG_DIR}-{tile_px}x{grid}"
    dest = Path(data_dir).resolve() / name
    return ensure_built(dest, fingerprint(tile_px, grid, dates), lambda tmp: build(tmp, tile_px, grid, dates))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="where batch-catalog/ is (or will be) kept")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE, help=f"tile width = height, px ({DEFAULT_TILE})")
    parser.add_argument("--grid", type=int, default=DEFAULT_GRID, help=f"tiles per side ({DEFAULT_GRID})")
    args = parser.parse_args(argv)
    print(ensure_catalog(args.data_dir, args.tile, args.grid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
