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
sandbox's share without the cost of reading the data (the worst case).

Last, the whole request of the NDVI benchmark (``bench_ndvi.py``'s catalog: 6 dates of 3000² px COGs,
B04 + B08; POST /result through the app, GTiff out) with the NDVI computed by a UDF in
``reduce_dimension(bands)`` and the mean over t: sandboxed vs the same chunks in-process, and the plain
``ndvi`` graph for reference. ``--skip-request`` leaves it out (the catalog is generated once, ~1 min).
"""

from __future__ import annotations

import argparse
import json
import logging
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


def in_process(cube: xr.DataArray, code: str = UDF) -> xr.DataArray:
    from openeo.udf import UdfData, XarrayDataCube
    from openeo.udf.run_code import run_udf_code

    result = run_udf_code(code, UdfData(datacube_list=[XarrayDataCube(cube)], user_context={}))
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
    local_run = lambda code, context, block, limits, session=None: in_process(block)  # noqa: E731

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


NDVI_UDF = """
import xarray

def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    red, nir = cube.sel(bands="B04"), cube.sel(bands="B08")
    return (nir - red) / (nir + red)
"""


def whole_request(runs: int) -> None:
    import base64
    import tempfile
    from pathlib import Path

    import bench_ndvi
    import ndvi_data

    from backend.app import create_app
    from backend.processing.processes import udf as udf_process
    from backend.settings import load_settings

    catalog = ndvi_data.ensure_catalog(bench_ndvi.DEFAULT_DATA_DIR)
    settings = load_settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-udf-")), demo_catalog=False,
                             stac_sources=[{"kind": "static", "url": str(catalog)}], udf_memory_mb=2048,
                             udf_cpu_seconds=60, udf_timeout=120)
    app = create_app(settings)
    app.extensions["openeo_backend"].users.add("bench", "bench-password")
    client = app.test_client()
    basic = base64.b64encode(b"bench:bench-password").decode()
    token = client.get("/openeo/1.2/credentials/basic", headers={"Authorization": f"Basic {basic}"}).json
    headers = {"Authorization": f"Bearer basic//{token['access_token']}"}
    plain = bench_ndvi.process_graph(ndvi_data.DEFAULT_SIZE)
    with_udf = json.loads(json.dumps(plain))
    nodes = with_udf["process"]["process_graph"]
    nodes["ndvi"] = {"process_id": "reduce_dimension", "arguments": {
        "data": {"from_node": "load"}, "dimension": "bands", "reducer": {"process_graph": {"udf": {
            "process_id": "run_udf", "arguments": {"data": {"from_parameter": "data"}, "udf": NDVI_UDF,
                                                   "runtime": "Python"}, "result": True}}}}}
    sandboxed_run = udf_process.run_udf_chunk
    local_run = lambda code, context, block, limits, session=None: in_process(block, code)  # noqa: E731
    answers = {}

    def post(name, graph, runner):
        def run():
            udf_process.run_udf_chunk = runner
            try:
                response = client.post("/openeo/1.2/result", json=graph, headers=headers)
            finally:
                udf_process.run_udf_chunk = sandboxed_run
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
            answers[name] = response.get_data()
        return run

    contenders = {"ndvi process": post("plain", plain, sandboxed_run),
                  "UDF in-process": post("local", with_udf, local_run),
                  "UDF sandboxed": post("sandboxed", with_udf, sandboxed_run)}
    times = {name: [] for name in contenders}
    for function in contenders.values():
        function()  # warm-up: caches, the fork server
    for _ in range(runs):  # interleaved: drift of the machine hits all alike
        for name, function in contenders.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    np.testing.assert_array_equal(_pixels(answers["local"]), _pixels(answers["sandboxed"]))
    np.testing.assert_allclose(_pixels(answers["local"]), _pixels(answers["plain"]), rtol=1e-5, atol=1e-6)
    medians = {name: statistics.median(values) for name, values in times.items()}
    local, sandboxed = medians["UDF in-process"], medians["UDF sandboxed"]
    print(f"\nPOST /result, NDVI benchmark (6 t x 2 bands x 3000² COGs), medians of {runs}:")
    for name, seconds in medians.items():
        print(f"{name:>26} {seconds * 1000:10.1f} ms")
    print(f"{'sandboxed / in-process':>26} {sandboxed / local:10.2f}   (+{(sandboxed - local) * 1000:.0f} ms)")


def _pixels(geotiff: bytes) -> np.ndarray:
    from rasterio.io import MemoryFile

    with MemoryFile(geotiff) as file, file.open() as dataset:  # provenance tags differ; pixels must not
        return dataset.read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--skip-request", action="store_true")
    arguments = parser.parse_args()
    runs = arguments.runs
    logging.getLogger("openeo.udf").setLevel(logging.WARNING)
    limits = UdfLimits(memory=2 * 2**30, cpu=60, timeout=120)
    print(f"{'chunk':>26} {'in-process ms':>14} {'sandbox ms':>11} {'overhead ms':>12} {'ratio':>6}")
    for side in (256, 1024):
        cube = chunk(side)
        np.testing.assert_allclose(run_udf_chunk(UDF, {}, cube, limits).values, in_process(cube).values)
        local = median_seconds(lambda: in_process(cube), runs)
        sandboxed = median_seconds(lambda: run_udf_chunk(UDF, {}, cube, limits, f"bench-{side}"), runs)
        label = f"6 t x 2 bands x {side}² f32"
        print(f"{label:>26} {local * 1000:14.1f} {sandboxed * 1000:11.1f} {(sandboxed - local) * 1000:12.1f} "
              f"{sandboxed / local:6.2f}")
    whole_cube(max(3, runs // 3))
    if not arguments.skip_request:
        whole_request(max(3, runs // 3))


if __name__ == "__main__":
    main()
