"""The first POST /result of each gunicorn worker, right after `openeo-backend serve` is ready.

Starts the real server (as `serve` does, without the job runner) several times and sends the same small
synchronous request (load_collection 96 x 84 px x 2 bands x 1 date → NDVI → GTiff) on fresh connections
as soon as /health answers; which worker served a request is read from the workers' CPU times. Prints
the time to ready, each worker's first request and the warm requests (median).

    .venv/bin/python tests/benchmarks/bench_first_request.py                      # this checkout
    .venv/bin/python tests/benchmarks/bench_first_request.py --src /tmp/other-checkout --runs 5
"""

from __future__ import annotations

import argparse
import base64
import json
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.benchmarks.bench_metadata import Server, free_port  # noqa: E402
USER, PASSWORD = "bench", "bench-pw"
NDVI_SIZE = 500
FIRST_VS_WARM = 1.5  # issue 12: a fresh serve answers its first NDVI request within 1.5 x a warm one
GRAPH = {"process": {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {
        "id": "SENTINEL2_L2A_DEMO", "bands": ["B04", "B08"], "temporal_extent": ["2022-06-01", "2022-06-10"],
        "spatial_extent": {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}}},
    "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "ndvi"}, "format": "GTiff"},
             "result": True}}}}


def serve_argv(data_dir: Path, port: int, workers: int, job_runner: bool) -> list[str]:
    # `python -c` from --src, so another checkout can be measured with this venv
    return [sys.executable, "-c", "from backend.cli import main; main()", "serve", "--port", str(port),
            "--data-dir", str(data_dir), "--workers", str(workers), *([] if job_runner else ["--no-job-runner"])]


def one_run(src: Path, data_dir: Path, workers: int, requests_per_run: int, job_runner: bool = False,
            graph: dict = GRAPH, env_extra: dict | None = None) -> dict:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src), **(env_extra or {})}
    server = Server("backend", serve_argv(data_dir, port, workers, job_runner), env, data_dir / "bench-first.log", port,
                    workers, cwd=src)
    started = time.monotonic()
    server.start()
    try:
        server.wait_ready(300)
        ready = time.monotonic() - started
        url = f"http://127.0.0.1:{port}/openeo/1.2"
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        token = requests.get(f"{url}/credentials/basic", headers={"Authorization": f"Basic {basic}"},
                             timeout=60).json()["access_token"]
        headers = {"Authorization": f"Bearer basic//{token}", "Connection": "close"}
        served = []
        # gunicorn workers run the master's command line; the job runner and its Dask processes do not
        command = server.master.cmdline()
        workers_seen = {p.pid for p in server.master.children() if p.cmdline() == command}
        for _ in range(requests_per_run):
            _, before, _ = server.cpu_seconds()
            t0 = time.perf_counter()
            response = requests.post(f"{url}/result", json=graph, headers=headers, timeout=120)
            latency = time.perf_counter() - t0
            _, after, _ = server.cpu_seconds()
            response.raise_for_status()
            worker = max(workers_seen & set(after), key=lambda pid: after[pid] - before.get(pid, 0.0))
            served.append((worker, latency))
        return {"ready": ready, "served": served}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=REPO_ROOT, help="checkout to serve (default: this one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="server starts")
    parser.add_argument("--requests", type=int, default=6, help="POST /result per server start")
    parser.add_argument("--data-dir", type=Path, help="reuse a data dir (demo catalog) between runs")
    parser.add_argument("--job-runner", action="store_true", help="start the batch-job runner too, as serve does")
    parser.add_argument("--ndvi", action="store_true",
                        help="the NDVI composite of bench_scaling.py's smallest tile (0.25 MP x 6 dates, its own "
                             "static catalog, demo catalog off) instead of the demo request")
    args = parser.parse_args()
    graph, env_extra = GRAPH, {}
    if args.ndvi:
        import bench_ndvi
        import ndvi_data

        catalog = ndvi_data.ensure_catalog(bench_ndvi.DEFAULT_DATA_DIR, NDVI_SIZE)
        graph = bench_ndvi.process_graph(NDVI_SIZE)
        env_extra = {"OPENEO_BACKEND_DEMO_CATALOG": "false",
                     "OPENEO_BACKEND_STAC_SOURCES": json.dumps([{"kind": "static", "url": str(catalog)}])}
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-first-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", "from backend.cli import main; main()", "users", "add", USER,
                    "--password", PASSWORD, "--data-dir", str(data_dir)], cwd=args.src, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(args.src)})
    if not args.ndvi and not (data_dir / "demo-catalog" / "catalog.json").exists():  # generated on 1st start
        print("generating the demo catalog (untimed start) ...", file=sys.stderr)
        one_run(args.src, data_dir, 1, 1)
    print(f"{'NDVI 0.25 MP x 6 dates' if args.ndvi else 'demo 96 x 84 px'}: "
          f"src {args.src}, {args.workers} workers, {args.requests} requests per start, "
          f"job runner {'on' if args.job_runner else 'off'}")
    print("| run | ready (s) | first request per worker (s) | warm requests, median (s) | first / warm |")
    print("|---|---|---|---|---|")
    ratios = []
    for run in range(1, args.runs + 1):
        result = one_run(args.src, data_dir, args.workers, args.requests, args.job_runner, graph, env_extra)
        firsts, warm, seen = [], [], set()
        for worker, latency in result["served"]:
            (warm if worker in seen else firsts).append(latency)
            seen.add(worker)
        median = statistics.median(warm) if warm else None
        ratio = ", ".join(f"{x / median:.2f}" for x in firsts) if median else "-"
        ratios += [x / median for x in firsts] if median else []
        print(f"| {run} | {result['ready']:.2f} | {', '.join(f'{x:.2f}' for x in firsts)} | "
              f"{f'{median:.3f}' if median else '-'} | {ratio} |", flush=True)
    if ratios:
        print(f"\nfirst request / warm: median {statistics.median(ratios):.2f}, worst {max(ratios):.2f} "
              f"(goal ≤ {FIRST_VS_WARM})")

if __name__ == "__main__":
    main()
