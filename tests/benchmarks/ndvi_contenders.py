"""The two reference contenders of the NDVI benchmark, run by ``bench_ndvi.py`` in their own processes.

Both compute what the backend's graph computes on the benchmark catalog (``ndvi_data.py``): the mean NDVI
over all dates of the whole tile, (B08 - B04) / (B08 + B04) with nodata (0) masked, written as a
Cloud-Optimized GeoTIFF, float32, NaN nodata, with the same creation options the backend's GTiff
writer uses by default (DEFLATE, floating-point predictor, 512 px tiles, overviews).

* ``handwritten``: what a competent user writes with odc-stac + xarray + rioxarray: pystac items →
  ``odc.stac.load(chunks=...)`` → float32 → mask nodata → NDVI → ``mean("time")`` (NaN-skipping) →
  ``rio.to_raster(driver="COG", NUM_THREADS="ALL_CPUS")``. Dask's threaded scheduler, ``--threads``.
* ``floor``: the least work that gives the same file: rasterio reads each COG window (the whole tile)
  in a thread pool of ``--threads``, NDVI in float32 numpy (in place) per date as soon as both bands
  are in, NaN-skipping mean as sum / count, one COG write (GDAL ``NUM_THREADS=ALL_CPUS`` and
  ``COG_TMP_COMPRESSION=PACKBITS`` like the backend's writer). No scale factor is applied here (NDVI
  does not need it; the backend applies it, as load_collection must).

Each invocation: imports, one untimed warm-up pass, then ``--runs`` timed passes; before each timed
pass the process's peak-RSS counter is reset (``/proc/self/clear_refs``), after it the peak (VmHWM) is
read. One JSON line per timed pass on stdout: seconds, CPU seconds (user + sys, all threads), CPU seconds
other processes of the machine used meanwhile, peak RSS, RSS at the start of the pass.

    .venv/bin/python tests/benchmarks/ndvi_contenders.py floor --catalog DIR/ndvi-catalog/catalog.json \\
        --out /tmp/floor.tif
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

COLLECTION = "S2_NDVI_BENCH"
# The backend's GTiff defaults (backend/processing/writers/raster_tiff.py), as GDAL COG options.
COG_OPTIONS = {"COMPRESS": "DEFLATE", "PREDICTOR": "FLOATING_POINT", "BLOCKSIZE": "512", "OVERVIEWS": "AUTO",
               "RESAMPLING": "NEAREST", "BIGTIFF": "IF_SAFER"}


# --- memory ---------------------------------------------------------------------------------------


def proc_status_kb(pid: int | str = "self") -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmHWM:", "VmRSS:")):
                name, value = line.split(":", 1)
                values[name] = int(value.split()[0])
    return values


def reset_peak_rss(pid: int | str = "self") -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of a process we own (Linux >= 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def machine_busy_seconds() -> float:
    """CPU seconds (all cores, user + sys + irq + steal...) the whole machine has been busy since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float, threshold: float, window: float = 1.0) -> float:
    """Wait (at most ``max_wait`` s) for a ``window`` in which the machine is busy less than ``threshold``
    cores; returns the seconds waited. On a shared machine other users' work inflates wall times."""
    start = time.monotonic()
    while max_wait > 0:
        before = machine_busy_seconds()
        time.sleep(window)
        if (machine_busy_seconds() - before) / window < threshold or time.monotonic() - start >= max_wait:
            break
    return time.monotonic() - start


# --- the items (both contenders) ------------------------------------------------------------------


def bench_items(catalog_json: str):
    import pystac

    catalog = pystac.Catalog.from_file(catalog_json)
    items = list(catalog.get_child(COLLECTION).get_items())
    return sorted(items, key=lambda i: (i.datetime, i.id))


def tile_geobox(items):
    """The whole tile on its native grid (all items share it), from the items' proj fields."""
    from odc.geo.geobox import GeoBox
    from affine import Affine

    props = items[0].properties
    height, width = props["proj:shape"]
    return GeoBox((height, width), Affine(*props["proj:transform"][:6]), props["proj:code"])


# --- contender b: odc-stac + xarray + rioxarray -----------------------------------------------------


def handwritten(catalog_json: str, out: Path, threads: int, chunk: int) -> None:
    import dask
    import odc.stac
    import rioxarray  # noqa: F401

    items = bench_items(catalog_json)
    ds = odc.stac.load(items, bands=["B04", "B08"], geobox=tile_geobox(items), groupby="solar_day",
                       chunks={"x": chunk, "y": chunk, "time": 1})
    red = ds["B04"].astype("float32")
    nir = ds["B08"].astype("float32")
    red = red.where(ds["B04"] != 0)
    nir = nir.where(ds["B08"] != 0)
    ndvi = (nir - red) / (nir + red)
    composite = ndvi.mean("time", skipna=True).astype("float32")
    composite = composite.rio.write_nodata(np.nan, encoded=False)
    # The COG driver cannot be written block by block (rioxarray's lock= path opens the file "r+"):
    # rioxarray computes the (small) 2-D result in memory, then GDAL writes the COG, compressing with
    # all cores like the backend's writer (NUM_THREADS), so both spend the same effort on the file.
    with dask.config.set(scheduler="threads", num_workers=threads):
        composite.rio.to_raster(out, driver="COG", compress="DEFLATE", predictor=3, blocksize=512,
                                overview_resampling="nearest", BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS")


# --- contender c: the decode floor ------------------------------------------------------------------


def _ndvi_of(item) -> tuple[np.ndarray, np.ndarray]:
    """(NDVI float32, valid mask) of one date: two window reads, then in-place float32 numpy."""
    import rasterio

    bands = {}
    for name in ("B04", "B08"):
        with rasterio.open(item.assets[name].get_absolute_href()) as src:
            bands[name] = src.read(1, window=((0, src.height), (0, src.width)))
    valid = (bands["B04"] != 0) & (bands["B08"] != 0)
    red = bands["B04"].astype(np.float32)
    nir = bands["B08"].astype(np.float32)
    ndvi = nir - red
    nir += red
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi /= nir
    return ndvi, valid


def floor(catalog_json: str, out: Path, threads: int, chunk: int) -> None:
    import rasterio

    items = bench_items(catalog_json)
    total = count = None
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for ndvi, valid in pool.map(_ndvi_of, items):  # one item per date in this catalog
            if total is None:
                total, count = np.zeros(ndvi.shape, np.float32), np.zeros(ndvi.shape, np.uint8)
            np.add(total, ndvi, out=total, where=valid)
            count += valid
    with np.errstate(invalid="ignore", divide="ignore"):
        total /= count  # 0 / 0 = NaN where no date is valid
    props = items[0].properties
    profile = dict(driver="COG", width=total.shape[1], height=total.shape[0], count=1, dtype="float32",
                   crs=props["proj:code"], transform=rasterio.Affine(*props["proj:transform"][:6]),
                   nodata=np.nan, NUM_THREADS="ALL_CPUS", **COG_OPTIONS)
    # The COG driver's temporary overview file uncompressed-ish (same result, less CPU), as the backend does.
    with rasterio.Env(COG_TMP_COMPRESSION="PACKBITS"), rasterio.open(out, "w", **profile) as dst:
        dst.write(total, 1)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


CONTENDERS = {"handwritten": handwritten, "floor": floor}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--catalog", required=True, help="catalog.json of ndvi_data.py")
    parser.add_argument("--out", type=Path, required=True, help="output GeoTIFF (warm-up writes beside it)")
    parser.add_argument("--threads", type=int, default=2, help="dask / thread-pool threads (2)")
    parser.add_argument("--chunk", type=int, default=2048, help="handwritten: x/y chunk size (2048)")
    parser.add_argument("--runs", type=int, default=1, help="timed passes (1)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first (1)")
    parser.add_argument("--quiet-wait", type=float, default=0,
                        help="before each timed pass, wait up to this many seconds for a quiet machine (0)")
    parser.add_argument("--quiet-threshold", type=float, default=0.3, help="quiet = busy < this many cores (0.3)")
    args = parser.parse_args(argv)
    run = CONTENDERS[args.contender]
    warm = args.out.with_name(args.out.stem + ".warmup" + args.out.suffix)
    for _ in range(args.warmup):
        run(args.catalog, warm, args.threads, args.chunk)
        warm.unlink(missing_ok=True)
    for _ in range(args.runs):
        args.out.unlink(missing_ok=True)
        wait_quiet(args.quiet_wait, args.quiet_threshold)
        before = proc_status_kb()
        reset = reset_peak_rss()
        cpu_start, busy_start = _cpu_seconds(), machine_busy_seconds()
        start = time.perf_counter()
        run(args.catalog, args.out, args.threads, args.chunk)
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_start
        others = machine_busy_seconds() - busy_start - cpu
        after = proc_status_kb()
        print(json.dumps({"contender": args.contender, "seconds": seconds, "cpu_seconds": cpu,
                          "others_cpu_seconds": others,
                          "rss_start_kb": before["VmRSS"],
                          "peak_rss_kb": after["VmHWM"] if reset else None, "pid": os.getpid()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
