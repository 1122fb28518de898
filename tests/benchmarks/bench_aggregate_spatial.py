"""Benchmark of aggregate_spatial (per-parcel time series) against exactextract on the same rasters.

10,000 random field polygons (rotated rectangles with sides of 20-80 m) inside demo tile T1
(EPSG:32632, x 675000-687800, y 5145000-5157800, 1280 x 1280 px at 10 m), 6 dates (2022-06-02 ...
2022-07-17, two of them with the swath-edge no-data wedge), 1 band (B08), reducer mean:

* ours: ``aggregate_spatial(cube, geometries, "mean")`` on the lazy cube of ``load_collection_cube``
  (the timing includes reading and decoding the COG windows through dask; building the lazy cube,
  which reads no pixels, is timed separately). Geometries as a GeoDataFrame in EPSG:32632 (what
  exactextract gets) and, as a request sends them, as a GeoJSON FeatureCollection in WGS84.
* exactextract: ``exact_extract([6 sources], frame, "mean", strategy="raster-sequential",
  output="pandas")`` — all dates in one call, on the B08 COGs the cube is read from (opened with rasterio
  inside the timing, named by date; DN with nodata 0, its means × 0.0001 = reflectance).

Every figure is the median of ``--repeats`` runs (default 5) after one untimed warm-up of each. Also:
ours on one thread (dask synchronous scheduler; exactextract is single-threaded), the phases of ours, and
the per-polygon agreement (median relative difference; exactextract weights partially covered pixels by
their coverage, pixel-centre methods do not).

    .venv/bin/python tests/benchmarks/bench_aggregate_spatial.py
    .venv/bin/python tests/benchmarks/bench_aggregate_spatial.py --repeats 3 --data-dir /tmp/bench-data

Needs exactextract (in the ``test`` extra). Results: tests/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

TILE = dict(west=675000, east=687800, south=5145000, north=5157800, crs=32632)
PERIOD = ["2022-06-01", "2022-07-31"]  # 06-02, 06-12, 06-17, 06-22, 06-27, 07-17
BAND = "B08"
SCALE = 0.0001


def random_fields(n: int, seed: int):
    """n rotated rectangles (sides 20-80 m) with centres inside the tile (60 m from its edges)."""
    import shapely

    rng = np.random.default_rng(seed)
    cx = rng.uniform(TILE["west"] + 60, TILE["east"] - 60, n)
    cy = rng.uniform(TILE["south"] + 60, TILE["north"] - 60, n)
    half_w, half_h = rng.uniform(10, 40, n), rng.uniform(10, 40, n)
    angle = rng.uniform(0, np.pi, n)
    corners = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)], dtype=float)
    dx, dy = corners[None, :, 0] * half_w[:, None], corners[None, :, 1] * half_h[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = cx[:, None] + dx * cos - dy * sin
    y = cy[:, None] + dx * sin + dy * cos
    return shapely.polygons(np.stack([x, y], axis=-1))


def timed(function, repeats: int) -> tuple[float, list[float], object]:
    function()  # warm-up (file cache, imports, lazy initialisation)
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--polygons", type=int, default=10_000)
    parser.add_argument("-r", "--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep/reuse the generated demo catalog here")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (the figures are medians)")

    import dask
    import geopandas as gpd
    import shapely
    import rasterio
    from exactextract import exact_extract
    from exactextract.raster import RasterioRasterSource
    from pyproj import Transformer

    from backend.catalog.metadata import to_openeo_collection
    from backend.catalog.registry import CollectionRef
    from backend.catalog.sources import StaticCatalogSource
    from backend.demo import DEMO_S2_COLLECTION, ensure_demo_catalog
    from backend.processing.loading import load_collection_cube
    from backend.processing.processes import zonal
    from backend.processing.processes.aggregate_spatial import aggregate_spatial, cube_grid

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-aggregate-"))
    print(f"demo catalog in {data_dir} (generating if needed) ...", file=sys.stderr)
    catalog = ensure_demo_catalog(data_dir / "demo-catalog")
    source = StaticCatalogSource(str(catalog))
    ref = CollectionRef(DEMO_S2_COLLECTION, DEMO_S2_COLLECTION, source)
    metadata = to_openeo_collection(source.collection(DEMO_S2_COLLECTION), DEMO_S2_COLLECTION, "http://bench")

    def lazy_cube():
        return load_collection_cube(ref, metadata, TILE, PERIOD, [BAND])

    cube = lazy_cube()
    dates = [str(t)[:10] for t in cube.t.values]
    assert cube.shape == (6, 1, 1280, 1280), cube.shape
    paths = [str(catalog.parent / DEMO_S2_COLLECTION / f"S2_DEMO_T1_{d.replace('-', '')}" / f"{BAND}.tif")
             for d in dates]

    polygons = random_fields(args.polygons, args.seed)
    frame = gpd.GeoDataFrame({"fid": np.arange(args.polygons)}, geometry=polygons, crs=32632)
    to_wgs84 = Transformer.from_crs(32632, 4326, always_xy=True)
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"fid": i}, "geometry": shapely.geometry.mapping(g)}
        for i, g in enumerate(shapely.transform(polygons, lambda xy: np.column_stack(
            to_wgs84.transform(xy[:, 0], xy[:, 1]))))]}

    def ours(geometries=frame):
        return aggregate_spatial(cube, geometries, "mean")

    def ours_one_thread():
        with dask.config.set(scheduler="synchronous"):
            return ours()

    def theirs():
        datasets = [rasterio.open(path) for path in paths]
        try:  # named sources: the files are all called B08.tif
            sources = [RasterioRasterSource(ds, name=date) for ds, date in zip(datasets, dates)]
            return exact_extract(sources, frame, "mean", strategy="raster-sequential", output="pandas")
        finally:
            for ds in datasets:
                ds.close()

    print("timing ...", file=sys.stderr)
    rows = {}
    rows["lazy cube (load_collection_cube, no pixels)"] = timed(lazy_cube, args.repeats)
    rows["ours: GeoDataFrame EPSG:32632, dask threads"] = timed(ours, args.repeats)
    rows["ours: GeoDataFrame EPSG:32632, one thread"] = timed(ours_one_thread, args.repeats)
    rows["ours: GeoJSON WGS84 dict, dask threads"] = timed(lambda: ours(geojson), args.repeats)
    rows["exactextract raster-sequential, 6 files in one call"] = timed(theirs, args.repeats)

    # phases of ours
    grid, _ = cube_grid(cube)
    rows["  phase: read + decode the 6 windows (dask compute)"] = timed(lambda: cube.values, args.repeats)
    rows["  phase: rasterise 10,000 polygons once (memberships)"] = timed(
        lambda: zonal.memberships(polygons, grid), args.repeats)
    members = zonal.memberships(polygons, grid)
    values = cube.values.reshape(6, -1)
    grouped = zonal.GroupedReducer(members)
    rows["  phase: gather + grouped mean, 6 dates"] = timed(
        lambda: [grouped.reduce("mean", values[k][members.pixels]) for k in range(6)], args.repeats)

    # agreement
    result = rows["ours: GeoDataFrame EPSG:32632, dask threads"][2]
    from_geojson = rows["ours: GeoJSON WGS84 dict, dask threads"][2]
    table = rows["exactextract raster-sequential, 6 files in one call"][2]
    mean_columns = [c for c in table.columns if c.endswith("mean")]
    assert len(mean_columns) == 6, table.columns
    theirs_values = table[mean_columns].to_numpy(dtype=np.float64) * SCALE  # (n, 6) DN → reflectance
    ours_values = result.values[:, :, 0].astype(np.float64)
    both = np.isfinite(theirs_values) & np.isfinite(ours_values)
    relative = np.abs(ours_values[both] - theirs_values[both]) / np.abs(theirs_values[both])
    nan_mismatch = int((np.isfinite(theirs_values) != np.isfinite(ours_values)).sum())
    counts = np.diff(members.starts)
    geojson_same = np.allclose(from_geojson.values, result.values, rtol=1e-3, equal_nan=True)

    ours_time = rows["ours: GeoDataFrame EPSG:32632, dask threads"][0]
    ee_time = rows["exactextract raster-sequential, 6 files in one call"][0]
    import dask as _dask
    import exactextract

    print(f"\n{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {platform.platform()}, "
          f"Python {platform.python_version()}, numpy {np.__version__}, rasterio {rasterio.__version__} "
          f"(GDAL {rasterio.__gdal_version__}), shapely {shapely.__version__}, dask {_dask.__version__}, "
          f"exactextract {exactextract.__version__}. {args.polygons:,} polygons (seed {args.seed}), "
          f"{len(dates)} dates ({', '.join(dates)}), band {BAND}, cube {tuple(cube.shape)}, median of "
          f"{args.repeats} runs.\n")
    print("| what | median s | runs (s) |")
    print("|---|---|---|")
    for name, (median, times, _) in rows.items():
        print(f"| {name} | {median:.3f} | {', '.join(f'{t:.3f}' for t in times)} |")
    print(f"\nratio ours / exactextract (threads): {ours_time / ee_time:.2f}; one thread: "
          f"{rows['ours: GeoDataFrame EPSG:32632, one thread'][0] / ee_time:.2f}; from GeoJSON WGS84: "
          f"{rows['ours: GeoJSON WGS84 dict, dask threads'][0] / ee_time:.2f} (goal ≤ 2.0)")
    print(f"agreement with exactextract: median relative difference {np.median(relative):.3%}, 90th percentile "
          f"{np.percentile(relative, 90):.3%}, max {relative.max():.2%} over {both.sum():,} polygon-dates; "
          f"NaN in one only: {nan_mismatch}")
    print(f"pixels per polygon (centre inside): median {int(np.median(counts))}, min {counts.min()}, max "
          f"{counts.max()}; polygons without a pixel: {int((counts == 0).sum())}; all-NaN polygon-dates (wedge): "
          f"{int(np.isnan(ours_values).sum())}; GeoJSON-WGS84 run equals the GeoDataFrame run: {geojson_same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
