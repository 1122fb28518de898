"""NDVI composite at every size: POST /result against hand-written code and the decode floor, 0.25–100 MP.

``bench_ndvi.py``'s three contenders (ours: ``openeo-backend serve`` + POST /result; hand-written
odc-stac + xarray + rioxarray; floor: rasterio + numpy) on square tiles of several sizes (``ndvi_data.py``:
6 dates, B04 + B08, uint16 COGs), side by side in one run: for each size a server on that size's catalog,
one warm-up request per worker, then ``--repeats`` rounds of the three contenders (order rotated each
round), their outputs compared pixel by pixel. Reported per size: medians, ours / hand-written
(requirement ≤ 1.10), ours / floor (goal ≤ 1.5) and seconds per megapixel and date.

    .venv/bin/python tests/benchmarks/bench_scaling.py                          # 6 sizes, 5 rounds (~10 min)
    .venv/bin/python tests/benchmarks/bench_scaling.py --sizes 500 1000 -r 3    # a quick look

The catalogs are generated on first use (10000² px: ~3 min, 12 GB RAM, 0.6 GB disk) and kept in
``--data-dir``. See README.md beside this file for the method and the recorded curve.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_ndvi  # noqa: E402
import ndvi_contenders  # noqa: E402
import ndvi_data  # noqa: E402
from bench_metadata import ServerFailed, machine_description  # noqa: E402

SIZES = (500, 1000, 2000, 4000, 7000, 10000)  # px per side: 0.25, 1, 4, 16, 49, 100 MP per date
CONTENDERS = bench_ndvi.CONTENDERS
# The largest size loads 10000² px x 2 bands x 6 dates: above the default sync limits of serve.
SERVER_ENV = {"OPENEO_BACKEND_SYNC_MAX_PIXELS": str(2_000_000_000), "OPENEO_BACKEND_SYNC_TIMEOUT": "1800"}


def measure_size(size: int, args: argparse.Namespace) -> dict:
    """All rounds of one size: {"runs": [Run], "first_requests": [s], "problems": [str]}."""
    catalog_json = ndvi_data.ensure_catalog(args.data_dir, size)
    out_dir = args.data_dir / "outputs" / str(size)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {c: out_dir / f"{c}.tif" for c in CONTENDERS}
    server = bench_ndvi.start_server(args.data_dir / "server", catalog_json, args.workers, args.threads,
                                     args.startup_timeout)
    runs, first_requests, warmed = [], [], set()
    try:
        token = bench_ndvi.bearer_token(server.port)
        body = json.dumps(bench_ndvi.process_graph(size)).encode()
        for _ in range(8 * args.workers):  # every worker serves once before the timed rounds
            warm = bench_ndvi.run_ours(server, token, body, outputs["ours"], 0)
            if warm.pid not in warmed:
                first_requests.append(warm.seconds)
            warmed.add(warm.pid)
            if warmed >= set(server.worker_pids()):
                break
        for repeat in range(1, args.repeats + 1):
            shift = (repeat - 1) % len(CONTENDERS)
            for contender in CONTENDERS[shift:] + CONTENDERS[:shift]:
                if contender == "ours":
                    ndvi_contenders.wait_quiet(args.quiet_wait, args.quiet_threshold)
                    run = bench_ndvi.run_ours(server, token, body, outputs["ours"], repeat)
                    if run.pid not in warmed:
                        run.note = "served by a cold worker"
                else:
                    run = bench_ndvi.run_script(contender, catalog_json, outputs[contender], args.threads,
                                                args.chunk, repeat, (args.quiet_wait, args.quiet_threshold))
                runs.append(run)
                print(f"{size}² round {repeat}/{args.repeats} {contender:<12} {run.seconds:8.3f} s "
                      f"{run.cpu_seconds:6.2f} CPU-s others {run.others_cpu_seconds:5.2f} {run.note}", file=sys.stderr)
    finally:
        server.stop()
    return {"runs": runs, "first_requests": first_requests, "problems": bench_ndvi.compare_outputs(outputs)}


def curve(results: dict[int, dict]) -> tuple[str, list[dict]]:
    """The Markdown table (one row per size) and its numbers."""
    header = ("| px per side | MP per date | floor s | hand-written s | ours s | ours × hand-written | ours × floor "
              "| s / MP: floor | hand-written | ours | others' CPU-s (median) |")
    lines, rows = [header, "|" + "---|" * (header.count("|") - 1)], []
    for size, result in sorted(results.items()):
        med = {c: bench_ndvi._median([r for r in result["runs"] if r.contender == c], "seconds") for c in CONTENDERS}
        mp = size * size / 1e6
        row = {"size": size, "megapixels": mp, **{f"{c}_seconds": med[c] for c in CONTENDERS},
               "ours_vs_handwritten": med["ours"] / med["handwritten"], "ours_vs_floor": med["ours"] / med["floor"],
               "others_cpu_seconds": bench_ndvi._median(result["runs"], "others_cpu_seconds")}
        rows.append(row)
        ok = lambda value, limit: f"**{value:.2f}**" if value > limit else f"{value:.2f}"  # noqa: E731
        lines.append(f"| {size} | {mp:g} | {med['floor']:.3f} | {med['handwritten']:.3f} | {med['ours']:.3f} | "
                     f"{ok(row['ours_vs_handwritten'], bench_ndvi.MAX_VS_HANDWRITTEN)} | "
                     f"{ok(row['ours_vs_floor'], bench_ndvi.MAX_VS_FLOOR)} | "
                     + " | ".join(f"{med[c] / mp:.3f}" for c in ("floor", "handwritten", "ours"))
                     + f" | {row['others_cpu_seconds']:.2f} |")
    return "\n".join(lines), rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="px per side (500 … 10000)")
    parser.add_argument("-r", "--repeats", type=int, default=5, help="rounds per size; medians (5)")
    parser.add_argument("--data-dir", type=Path, default=bench_ndvi.DEFAULT_DATA_DIR,
                        help="generated catalogs (kept), the server's data dir, the outputs")
    parser.add_argument("--threads", type=int, default=2, help="sync threads of the server and the scripts (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2, serve's default)")
    parser.add_argument("--chunk", type=int, default=2048, help="hand-written script's x/y chunk size (2048)")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="before each timed run wait up to this many seconds for a quiet machine (30)")
    parser.add_argument("--quiet-threshold", type=float, default=0.3, help="quiet: busy < this many cores (0.3)")
    parser.add_argument("--startup-timeout", type=float, default=180, help="seconds to wait for /health (180)")
    parser.add_argument("--json", nargs="?", const="auto", metavar="PATH", help="also write every run as JSON")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(SERVER_ENV)  # start_server passes the environment on
    started = dt.datetime.now().astimezone()
    results = {}
    try:
        for size in args.sizes:
            print(f"size {size}² (catalog generated on first use) ...", file=sys.stderr)
            results[size] = measure_size(size, args)
    except ServerFailed as exc:
        print(exc, file=sys.stderr)
        return 2
    table, rows = curve(results)
    machine = machine_description()
    print(f"\n## NDVI composite by size, {started:%Y-%m-%d %H:%M %Z}\n")
    print(f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), Python {machine['python']}. 6 dates × B04, B08; "
          f"{args.threads} threads per contender, gunicorn {args.workers} workers; median of {args.repeats} rounds.\n")
    print(table)
    problems = {size: r["problems"] for size, r in results.items() if r["problems"]}
    print("\nOutputs agree with the floor's at every size." if not problems
          else f"\nOutput differences: {problems}")
    print("First request of each worker per size (s): "
          + "; ".join(f"{s}²: " + ", ".join(f"{v:.2f}" for v in r["first_requests"]) for s, r in results.items()))
    if args.json:
        path = (bench_ndvi.RESULTS_DIR / f"scaling-{started:%Y%m%dT%H%M%S}.json") if args.json == "auto" \
            else Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"date": started.isoformat(), "machine": machine, "curve": rows,
                                    "settings": {k: str(v) for k, v in vars(args).items()},
                                    "runs": {s: [asdict(r) for r in res["runs"]] for s, res in results.items()},
                                    "first_requests": {s: r["first_requests"] for s, r in results.items()}}, indent=2))
        print(f"results written to {path}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
