"""XYZ tile latency of a web service (/services) under the production server (gunicorn, as `serve` starts it).

One NDVI service (mean over a month of the demo Sentinel-2 data, range [-1, 1]); distinct tiles inside demo
tile T1 are each requested once (rendered: the cache cannot help) and then again (served from the cache).
Responses say which they were (``X-Tile-Cache: hit|miss``); only hits count as cached. One client, sequential requests on fresh connections; a few untimed tiles warm each worker first.
Prints p50/p99 of both (issue goal: rendered p50 ≤ 150 ms, p99 ≤ 500 ms; cached ≤ 10 ms).

    .venv/bin/python tests/benchmarks/bench_tiles.py [--zoom 15] [--tiles 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.benchmarks.bench_metadata import Server, free_port  # noqa: E402

USER, PASSWORD = "bench", "bench-pw"
T1_LONLAT = (11.29, 46.43, 11.44, 46.53)  # inside demo tile T1 (EPSG:32632, 675000..687800, 5145000..5157800)
GRAPH = {
    "load": {"process_id": "load_collection", "arguments": {
        "id": "SENTINEL2_L2A_DEMO", "bands": ["B04", "B08"], "temporal_extent": ["2022-06-01", "2022-07-01"],
        "spatial_extent": {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}}},
    "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}},
    "mean": {"process_id": "reduce_dimension", "arguments": {"data": {"from_node": "ndvi"}, "dimension": "t",
             "reducer": {"process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}},
                                                 "result": True}}}}, "result": True}}


def tiles_inside(zoom: int) -> list[tuple[int, int, int]]:
    west, south, east, north = T1_LONLAT
    n = 2 ** zoom

    def tile_x(lon):
        return int((lon + 180) / 360 * n)

    def tile_y(lat):
        return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

    return [(zoom, x, y) for y in range(tile_y(north) + 1, tile_y(south)) for x in range(tile_x(west) + 1, tile_x(east))]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def timed_get(url: str) -> tuple[float, bytes, bool]:
    started = time.perf_counter()
    response = requests.get(url, headers={"Connection": "close"}, timeout=120)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png", response.text[:300]
    return elapsed, response.content, response.headers.get("X-Tile-Cache") == "hit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoom", type=int, default=15)
    parser.add_argument("--tiles", type=int, default=60, help="distinct tiles timed (each rendered once)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--data-dir", type=Path, help="reuse a data dir (its demo catalog)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cli = [sys.executable, "-c", "from backend.cli import main; main()"]
    subprocess.run([*cli, "users", "add", USER, "--password", PASSWORD, "--data-dir", str(data_dir)],
                   cwd=REPO_ROOT, capture_output=True, env=env)
    port = free_port()
    argv = [*cli, "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", str(args.workers),
            "--no-job-runner"]
    server = Server("backend", argv, env, data_dir / "bench-tiles.log", port, args.workers, cwd=REPO_ROOT)
    server.start()
    try:
        server.wait_ready(600)
        api = f"http://127.0.0.1:{port}/openeo/1.2"
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        token = requests.get(f"{api}/credentials/basic", headers={"Authorization": f"Basic {basic}"},
                             timeout=60).json()["access_token"]
        created = requests.post(f"{api}/services", headers={"Authorization": f"Bearer basic//{token}"}, timeout=60,
                                json={"type": "XYZ", "process": {"process_graph": GRAPH},
                                      "configuration": {"range": [-1, 1]}})
        created.raise_for_status()
        template = requests.get(created.headers["Location"], headers={"Authorization": f"Bearer basic//{token}"},
                                timeout=60).json()["url"]
        tiles = tiles_inside(args.zoom)
        warm, timed = tiles[:4 * args.workers], tiles[4 * args.workers:4 * args.workers + args.tiles]
        for tile in warm:  # first requests of each worker: imports, catalog, GDAL caches
            timed_get(template.replace("{z}/{x}/{y}", "/".join(map(str, tile))))
        rendered, cached = [], []
        for tile in timed:
            url = template.replace("{z}/{x}/{y}", "/".join(map(str, tile)))
            elapsed, body, hit = timed_get(url)
            assert not hit
            rendered.append(elapsed)
            # each worker process has its own cache: a miss on another worker renders once more (untimed)
            for _ in range(2 * args.workers):
                again, same, hit = timed_get(url)
                assert same == body
                if hit:
                    cached.append(again)
        print(f"{len(timed)} distinct z{args.zoom} tiles, {args.workers} gunicorn workers, sequential client")
        print("| tiles | p50 (ms) | p99 (ms) | max (ms) |")
        print("|---|---|---|---|")
        for name, values in (("rendered", rendered), ("cached", cached)):
            print(f"| {name} | {statistics.median(values) * 1000:.1f} | {percentile(values, 99) * 1000:.1f} | "
                  f"{max(values) * 1000:.1f} |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
