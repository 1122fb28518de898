"""Overhead of the UDF sandbox per chunk: the same UDF on the same chunk, in-process vs sandboxed.

    PYTHONPATH=. python tests/benchmarks/bench_udf.py [--runs 15]

In-process: ``openeo.udf.run_code.run_udf_code`` called directly (what the sandbox runs). Sandboxed:
``backend.processing.udf.sandbox.run_udf_chunk`` (write the chunk, fork a limited child in the jail,
run, read the result back). Chunks like the ones processes/udf.py cuts (t and bands whole, at most
1024 × 1024 px): an NDVI-sized one of 6 dates × 2 bands × 1024² float32, and a small one of 256².
Reports the median of ``--runs`` runs each (after one warm-up run).

Then the whole NDVI-sized cube (6 dates × 2 bands × 3000² float32, in Dask chunks as loaded) through
``processes.udf.run_on_chunks`` on 2 threads, computed: sandboxed vs the same chunks run in-process
(``run_udf_chunk`` replaced by ``run_udf_code``); the data is already in memory, so the ratio is the
sandbox's share without the cost of reading the data (a request that loads COGs dilutes it further).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import xarray as xr

from backend.processing.udf.sandbox import UdfLimits, run_udf_chunk

UDF = """
import xarray

def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    red, nir = cube.sel(bands="B04"), cube.sel(bands="B08")
    ndvi = (nir - red) / (nir + red)
    return xarray.concat([ndvi, ndvi], dim="bands").assign_coords(bands=cube.bands).transpose(*cube.dims)
"""


def chunk(side: int) -> xr.DataArray:
    rng = np.random.default_rng(0)
    values = rng.uniform(0.01, 0.5, (6, 2, side, side)).astype("float32")
    return xr.DataArray(values, dims=("t", "bands", "y", "x"), coords={
        "t": np.array([f"2022-06-{d:02d}" for d in (2, 7, 12, 17, 22, 27)], dtype="datetime64[ns]"),
        "bands": ["B04", "B08"], "y": 5151920.0 - 10 * np.arange(side), "x": 679720.0 + 10 * np.arange(side)})


def in_process(cube: xr.DataArray) -> xr.DataArray:
    from openeo.udf import UdfData, XarrayDataCube
    from openeo.udf.run_code import run_udf_code

    result = run_udf_code(UDF, UdfData(datacube_list=[XarrayDataCube(cube)], user_context={}))
    return result.get_datacube_list()[0].get_array()


def median_seconds(function, runs: int) -> float:
    function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def whole_cube(runs: int) -> None:
    import dask
    import dask.array as da

    from backend.processing.processes import udf as udf_process

    side = 3000
    values = da.random.default_rng(0).uniform(0.01, 0.5, (6, 2, side, side), chunks=(1, 1, 1024, 1024))
    cube = xr.DataArray(values.astype("float32"), dims=("t", "bands", "y", "x"), coords=chunk(side).coords)
    cube = cube.persist()
    call = udf_process.UdfCall(code=UDF, context={}, limits=UdfLimits(memory=2 * 2**30, cpu=60, timeout=120))
    sandboxed_run = udf_process.run_udf_chunk
    local_run = lambda code, context, block, limits: in_process(block)  # noqa: E731

    def compute(runner) -> None:
        udf_process.run_udf_chunk = runner
        try:
            with dask.config.set(scheduler="threads", num_workers=2):
                udf_process.run_on_chunks(cube, call).compute()
        finally:
            udf_process.run_udf_chunk = sandboxed_run

    local = median_seconds(lambda: compute(local_run), runs)
    sandboxed = median_seconds(lambda: compute(sandboxed_run), runs)
    chunks = len(cube.chunk({"x": 1024, "y": 1024}).data.chunks[2]) * len(cube.chunk({"x": 1024, "y": 1024}).data.chunks[3])
    print(f"{'whole cube 6x2x3000² f32':>26} {local * 1000:14.1f} {sandboxed * 1000:11.1f} "
          f"{(sandboxed - local) * 1000:12.1f} {sandboxed / local:6.2f}   ({chunks} chunks, 2 threads)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    limits = UdfLimits(memory=2 * 2**30, cpu=60, timeout=120)
    print(f"{'chunk':>26} {'in-process ms':>14} {'sandbox ms':>11} {'overhead ms':>12} {'ratio':>6}")
    for side in (256, 1024):
        cube = chunk(side)
        np.testing.assert_allclose(run_udf_chunk(UDF, {}, cube, limits).values, in_process(cube).values)
        local = median_seconds(lambda: in_process(cube), runs)
        sandboxed = median_seconds(lambda: run_udf_chunk(UDF, {}, cube, limits), runs)
        label = f"6 t x 2 bands x {side}² f32"
        print(f"{label:>26} {local * 1000:14.1f} {sandboxed * 1000:11.1f} {(sandboxed - local) * 1000:12.1f} "
              f"{sandboxed / local:6.2f}")
    whole_cube(max(3, runs // 3))


if __name__ == "__main__":
    main()
