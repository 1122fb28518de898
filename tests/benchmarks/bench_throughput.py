"""Synchronous throughput: 8 clients sending small NDVI requests for 60 s, ours against a served script.

The same request as ``bench_scaling.py`` on its smallest tile (0.25 MP x 6 dates, B04 + B08 → NDVI → mean
over time → GTiff), sent back to back by ``--clients`` threads (each with its own keep-alive
connection) for ``--seconds`` to:

* ``ours``: ``openeo-backend serve`` with its defaults (gunicorn, 2 workers, sync slots and threads as
  configured by default), POST /result with a bearer token;
* ``script``: ``handwritten_server.py``, the hand-written odc-stac + xarray + rioxarray script behind a
  minimal threaded HTTP server (one process).

Every response is checked by value: decoded and compared with the decode floor's file (same grid, NaN
pixels, values within 1e-5). Reported per contender: requests/s, p50 and p99 latency, refused (non-200)
and wrong answers; ours / script throughput (goal ≥ 0.8). A short untimed warm-up phase precedes each.

    .venv/bin/python tests/benchmarks/bench_throughput.py                       # 2 x 60 s + warm-up
    .venv/bin/python tests/benchmarks/bench_throughput.py --seconds 20 --rounds 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.io import MemoryFile

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_ndvi  # noqa: E402
import ndvi_contenders  # noqa: E402
import ndvi_data  # noqa: E402
from bench_metadata import HOST, Server, free_port, machine_description  # noqa: E402

SIZE = 500  # px per side: 0.25 MP per date
GOAL = 0.8  # ours / script requests per second


class Target:
    """Where the clients send: a host port, a path and headers."""

    def __init__(self, name: str, port: int, path: str, headers: dict[str, str], body: bytes):
        self.name, self.port, self.path, self.headers, self.body = name, port, path, headers, body


def check(payload: bytes, expected: np.ndarray) -> bool:
    with MemoryFile(payload) as memory, memory.open() as src:
        actual = src.read(1)
    return (actual.shape == expected.shape and np.array_equal(np.isnan(actual), np.isnan(expected))
            and np.allclose(actual, expected, rtol=1e-5, atol=1e-6, equal_nan=True))


def load(target: Target, clients: int, seconds: float, expected: np.ndarray) -> dict:
    """``clients`` threads sending back to back until ``seconds`` have passed; every answer checked."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, target.port, timeout=300)
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                connection.request("POST", target.path, body=target.body, headers=target.headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = http.client.HTTPConnection(HOST, target.port, timeout=300)
                with lock:
                    failures.append(f"connection: {exc!r}")
                continue
            took = time.perf_counter() - start
            problem = (f"{response.status}: {payload[:200]!r}" if response.status != 200
                       else None if check(payload, expected) else "wrong values")
            with lock:
                (failures.append(problem) if problem else latencies.append(took))
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {"contender": target.name, "seconds": elapsed, "ok": len(latencies), "failed": len(failures),
            "failures": sorted(set(failures))[:5], "per_second": len(latencies) / elapsed,
            "p50": statistics.median(latencies) if latencies else float("nan"), "p99": quantiles[98]}


def start_script_server(catalog: Path, threads: int, log: Path) -> Server:
    port = free_port()
    argv = [sys.executable, str(HERE / "handwritten_server.py"), "--catalog", str(catalog), "--port", str(port),
            "--threads", str(threads)]
    server = Server("script", argv, dict(os.environ), log, port, workers=0)
    server.start()
    server.wait_ready(120)
    return server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="client threads (8)")
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per contender and round (60)")
    parser.add_argument("--warmup", type=float, default=5, help="untimed seconds of load first (5)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, contenders alternating (1)")
    parser.add_argument("--data-dir", type=Path, default=bench_ndvi.DEFAULT_DATA_DIR)
    parser.add_argument("--json", nargs="?", const="auto", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now().astimezone()
    catalog = ndvi_data.ensure_catalog(args.data_dir, SIZE)
    reference = args.data_dir / "outputs" / "throughput-floor.tif"
    reference.parent.mkdir(parents=True, exist_ok=True)
    ndvi_contenders.floor(str(catalog), reference, 2, 2048)
    with rasterio.open(reference) as src:
        expected = src.read(1)

    ours = bench_ndvi.start_server(args.data_dir / "server", catalog, 2, 2, 180)  # serve's defaults
    script = start_script_server(catalog, 2, args.data_dir / "handwritten-server.log")
    targets = [
        Target("ours", ours.port, f"{bench_ndvi.API}/result",
               {"Authorization": f"Bearer {bench_ndvi.bearer_token(ours.port)}", "Content-Type": "application/json"},
               json.dumps(bench_ndvi.process_graph(SIZE)).encode()),
        Target("script", script.port, "/", {"Content-Type": "application/json"}, b"{}"),
    ]
    results = []
    try:
        for target in targets:
            load(target, args.clients, args.warmup, expected)
        for round_ in range(args.rounds):
            for target in (targets if round_ % 2 == 0 else targets[::-1]):
                result = load(target, args.clients, args.seconds, expected)
                results.append(result)
                print(f"round {round_ + 1} {target.name:<6} {result['per_second']:6.2f} req/s  p50 "
                      f"{result['p50'] * 1000:6.0f} ms  p99 {result['p99'] * 1000:6.0f} ms  ok {result['ok']}  "
                      f"failed {result['failed']} {result['failures']}", file=sys.stderr)
    finally:
        ours.stop()
        script.stop()

    def total(name: str) -> dict:
        rs = [r for r in results if r["contender"] == name]
        return {"per_second": statistics.median(r["per_second"] for r in rs),
                "p50": statistics.median(r["p50"] for r in rs), "p99": statistics.median(r["p99"] for r in rs),
                "ok": sum(r["ok"] for r in rs), "failed": sum(r["failed"] for r in rs)}

    summary = {name: total(name) for name in ("ours", "script")}
    ratio = summary["ours"]["per_second"] / summary["script"]["per_second"]
    machine = machine_description()
    print(f"\n## Sync throughput, {started:%Y-%m-%d %H:%M %Z}\n")
    print(f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}). {args.clients} clients, {args.seconds:g} s x "
          f"{args.rounds} round(s) per contender; request: {SIZE}² px x 6 dates x 2 bands → NDVI mean → GTiff.\n")
    print("| contender | requests/s | p50 ms | p99 ms | answers checked | refused or wrong |")
    print("|---|---|---|---|---|---|")
    names = {"ours": "ours: serve (defaults), POST /result", "script": "hand-written script, threaded HTTP server"}
    for name, row in summary.items():
        print(f"| {names[name]} | {row['per_second']:.2f} | {row['p50'] * 1000:.0f} | {row['p99'] * 1000:.0f} | "
              f"{row['ok']} | {row['failed']} |")
    print(f"\nours / script throughput: **{ratio:.2f}** (goal ≥ {GOAL}: {'yes' if ratio >= GOAL else '**NO**'})")
    if args.json:
        path = (bench_ndvi.RESULTS_DIR / f"throughput-{started:%Y%m%dT%H%M%S}.json") if args.json == "auto" \
            else Path(args.json)
        path.write_text(json.dumps({"date": started.isoformat(), "machine": machine, "rounds": results,
                                    "summary": summary, "ratio": ratio}, indent=2))
    failed = any(row["failed"] for row in summary.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
