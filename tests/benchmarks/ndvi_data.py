"""Benchmark data for the NDVI composite: a static STAC catalog of synthetic Sentinel-2-like COGs.

One tile of ``size`` x ``size`` px at 10 m (default 3000 x 3000, EPSG:32632) on 6 dates, bands B04
and B08 only, each a Cloud-Optimized GeoTIFF: uint16, DEFLATE with horizontal predictor, 512 px tiles,
internal overviews (average), nodata 0; STAC ``raster:bands`` declare scale 0.0001, offset 0 and
nodata 0, items carry ``proj:epsg``/``proj:code``/``proj:shape``/``proj:transform``/``proj:bbox``.

The pixels come from the demo generator's building blocks (``backend.demo``: landscape, phenology,
weather, footprints) run on a larger tile, with the demo's tile-1 layout (fields, forest, village,
lake, river, hills, clouds, swath edge) scaled from 1280 px to ``size`` px. Parcels keep their real
size (1-2 km blocks), so a larger tile has more of them, like real imagery. Two of the dates have a
no-data swath-edge wedge and several have clouds, so masking and nanmean have real work to do.

Deterministic: fixed seeds, element-wise numpy only. Generated once into ``<data-dir>/ndvi-catalog``
(atomically, with the demo catalog's lock/marker mechanism) and reused while this file, the demo
generator and the parameters are unchanged.

    .venv/bin/python tests/benchmarks/ndvi_data.py --data-dir /tmp/ndvi-bench   # prints catalog.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import pystac  # noqa: E402
import rasterio  # noqa: E402
import rasterio.shutil  # noqa: E402
from affine import Affine  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.io import MemoryFile  # noqa: E402

from backend.demo import layout as L  # noqa: E402
from backend.demo.ensure import ensure_built, generator_fingerprint  # noqa: E402
from backend.demo.footprint import footprint  # noqa: E402
from backend.demo.landscape import make_landscape  # noqa: E402
from backend.demo.scene import render_s2  # noqa: E402
from backend.demo.spec import TileSpec, acquisition_datetime  # noqa: E402

COLLECTION = "S2_NDVI_BENCH"
CATALOG_DIR = "ndvi-catalog"
DEFAULT_SIZE = 3000
BLOCK = 512
EPSG = 32632
X0, Y0 = 600000, 5200020  # upper-left corner, multiples of 20 m
SEED = 3003
BANDS = {"B04": ("red", 0.665, 0.038), "B08": ("nir", 0.842, 0.145)}
NODATA = 0
SCALE = 0.0001
# June–July 2022: two swath-edge dates (06-12, 06-22), clouds on every date but 06-17.
DATES = (dt.date(2022, 6, 2), dt.date(2022, 6, 12), dt.date(2022, 6, 17), dt.date(2022, 6, 22),
         dt.date(2022, 6, 27), dt.date(2022, 7, 17))

EXT_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
EXT_RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
EXT_PROJ = "https://stac-extensions.github.io/projection/v1.2.0/schema.json"
EXT_ITEM_ASSETS = "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def bench_tile(size: int = DEFAULT_SIZE) -> TileSpec:
    return TileSpec("NDVI_BENCH", EPSG, X0, Y0, size, size, seed=SEED)


def tile_bounds(size: int = DEFAULT_SIZE) -> tuple[float, float, float, float]:
    """(west, south, east, north) in EPSG:32632: the whole tile, exactly on its pixel grid."""
    return bench_tile(size).bounds(10)


# --- layout: the demo's tile 1 scaled to the benchmark tile ---------------------------------------


def _scaled(shape, k: float):
    if isinstance(shape, L.Rect):
        return L.Rect(shape.r0 * k, shape.r1 * k, shape.c0 * k, shape.c1 * k)
    if isinstance(shape, L.Ellipse):
        return L.Ellipse(shape.r * k, shape.c * k, shape.ar * k, shape.ac * k)
    if isinstance(shape, L.River):
        return L.River(shape.r0 * k, shape.r1 * k, shape.c * k, shape.amp * k, shape.period * k, shape.width)
    if isinstance(shape, L.Hill):
        return L.Hill(shape.r * k, shape.c * k, shape.radius * k, shape.height)
    raise TypeError(shape)


def bench_layout(size: int = DEFAULT_SIZE) -> L.TileLayout:
    base = L.TILE1_LAYOUT
    k = size / 1280.0
    blobs = lambda table: {d: tuple((r * k, c * k, rad * k) for r, c, rad in specs)  # noqa: E731
                           for d, specs in table.items()}
    a, b, side = base.orbit_edge
    return dataclasses.replace(
        base,
        forests=tuple((_scaled(s, k), rough) for s, rough in base.forests),
        urban=tuple(_scaled(r, k) for r in base.urban),
        bare=tuple(_scaled(r, k) for r in base.bare),
        water=tuple(_scaled(s, k) for s in base.water),
        fixed_block=None, fixed_fields=(),  # the demo's hand-made test fields: not needed here
        valley=_scaled(base.valley, k),
        floor_slope_m_per_px=base.floor_slope_m_per_px / k,
        wall_width_px=base.wall_width_px * k,
        hills=tuple(_scaled(h, k) for h in base.hills),
        orbit_edge=(a * k, b, side),  # col < a + b*row, both axes scaled by k
        clouds=blobs(base.clouds),
        cirrus=blobs(base.cirrus),
    )


# --- rasters --------------------------------------------------------------------------------------


def _overview_factors(size: int) -> list[int]:
    factors, f = [], 2
    while -(-size // f) >= BLOCK // 2:  # halve until an overview fits in about one tile
        factors.append(f)
        f *= 2
    return factors


def write_cog(path: Path, data: np.ndarray, tile: TileSpec, description: str) -> None:
    height, width = data.shape
    profile = dict(driver="GTiff", height=height, width=width, count=1, dtype="uint16", crs=f"EPSG:{tile.epsg}",
                   transform=Affine(*tile.transform(10)), nodata=NODATA, tiled=True, blockxsize=BLOCK,
                   blockysize=BLOCK)
    with MemoryFile() as mem:  # uncompressed in memory, then one compressed COG copy
        with mem.open(**profile) as ds:
            ds.write(data, 1)
            ds.set_band_description(1, description)
            ds.build_overviews(_overview_factors(min(height, width)), Resampling.average)
        with mem.open() as src:
            rasterio.shutil.copy(src, str(path), driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES",
                                 BLOCKSIZE=str(BLOCK), OVERVIEWS="FORCE_USE_EXISTING")


# --- STAC -----------------------------------------------------------------------------------------


def _band_fields(name: str) -> dict:
    common, centre, fwhm = BANDS[name]
    return {"gsd": 10,
            "eo:bands": [{"name": name, "common_name": common, "center_wavelength": centre,
                          "full_width_half_max": fwhm}],
            "raster:bands": [{"data_type": "uint16", "nodata": NODATA, "spatial_resolution": 10,
                              "scale": SCALE, "offset": 0}]}


def _item(tile: TileSpec, date: dt.date, geometry: dict, bbox: list[float]) -> pystac.Item:
    props = {"platform": "sentinel-2 (synthetic)", "gsd": 10, "proj:epsg": tile.epsg,
             "proj:code": f"EPSG:{tile.epsg}", "proj:shape": [tile.height, tile.width],
             "proj:transform": list(tile.transform(10)), "proj:bbox": list(tile.bounds(10))}
    item = pystac.Item(id=f"NDVI_BENCH_{date:%Y%m%d}", geometry=geometry, bbox=bbox,
                       datetime=acquisition_datetime(date), properties=props,
                       stac_extensions=[EXT_EO, EXT_RASTER, EXT_PROJ])
    for name in BANDS:
        item.add_asset(name, pystac.Asset(href=f"./{name}.tif", media_type=COG_TYPE, roles=["data"],
                                          extra_fields=_band_fields(name)))
    return item


def _render_date(root: Path, tile: TileSpec, layout: L.TileLayout, landscape, date: dt.date) -> pystac.Item:
    scene = render_s2(tile, layout, landscape, date)
    item_dir = root / COLLECTION / f"NDVI_BENCH_{date:%Y%m%d}"
    item_dir.mkdir(parents=True)
    for name in BANDS:
        write_cog(item_dir / f"{name}.tif", scene.bands[name], tile, name)
    geometry, bbox = footprint(tile, layout.orbit_edge if scene.has_nodata else None)
    return _item(tile, date, geometry, bbox)


def build(root: Path, size: int = DEFAULT_SIZE, dates=DATES) -> Path:
    tile, layout = bench_tile(size), bench_layout(size)
    root.mkdir(parents=True, exist_ok=True)
    landscape = make_landscape(tile, layout)
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:  # ~0.5 GB per date in flight
        items = list(pool.map(lambda d: _render_date(root, tile, layout, landscape, d), dates))
    union = [min(i.bbox[0] for i in items), min(i.bbox[1] for i in items),
             max(i.bbox[2] for i in items), max(i.bbox[3] for i in items)]
    times = [i.datetime for i in items]
    collection = pystac.Collection(
        id=COLLECTION, title="NDVI benchmark tile (SYNTHETIC)", license="CC0-1.0",
        description=f"SYNTHETIC Sentinel-2-like B04/B08, one {size} x {size} px tile at 10 m in EPSG:{EPSG}, "
                    f"{len(dates)} dates; uint16 DN = reflectance x 10000, nodata 0. Generated by "
                    "tests/benchmarks/ndvi_data.py for the NDVI benchmark; not real observations.",
        extent=pystac.Extent(pystac.SpatialExtent([union]), pystac.TemporalExtent([[min(times), max(times)]])),
        summaries=pystac.Summaries({"eo:bands": [{**_band_fields(n)["eo:bands"][0], "gsd": 10} for n in BANDS],
                                    "gsd": [10], "proj:epsg": [EPSG], "proj:code": [f"EPSG:{EPSG}"]}),
        stac_extensions=[EXT_EO, EXT_RASTER, EXT_PROJ, EXT_ITEM_ASSETS],
        extra_fields={"item_assets": {n: {"type": COG_TYPE, "roles": ["data"], **_band_fields(n)} for n in BANDS}},
    )
    collection.add_items(items)
    catalog = pystac.Catalog(id="ndvi-bench", description="Synthetic data for tests/benchmarks/bench_ndvi.py")
    catalog.add_child(collection)
    catalog.normalize_hrefs(str(root / "catalog.json"))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    (root / "params.json").write_text(json.dumps({"size": size, "dates": [str(d) for d in dates]}) + "\n")
    return root / "catalog.json"


def fingerprint(size: int, dates) -> str:
    """This file + the demo generator's sources + the parameters: any change regenerates."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(generator_fingerprint().encode())
    digest.update(json.dumps({"size": size, "dates": [str(d) for d in dates]}).encode())
    return f"ndvi-bench-{digest.hexdigest()[:16]}"


def ensure_catalog(data_dir: Path, size: int = DEFAULT_SIZE, dates=DATES) -> Path:
    """``<data_dir>/ndvi-catalog/catalog.json``, generated first if missing or outdated (~1 min)."""
    dest = Path(data_dir).resolve() / (CATALOG_DIR if size == DEFAULT_SIZE else f"{CATALOG_DIR}-{size}")
    return ensure_built(dest, fingerprint(size, dates), lambda tmp: build(tmp, size, dates))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="where ndvi-catalog/ is (or will be) kept")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"tile width = height in px ({DEFAULT_SIZE})")
    args = parser.parse_args(argv)
    print(ensure_catalog(args.data_dir, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
