"""Our aggregator against VITO's openeo-aggregator (the anchor), both in front of the same three fake backends
(federation_fakes.py: 300 collections each, the official process specs), in one run.

    .venv/bin/python tests/benchmarks/bench_federation.py            # ~7 min
    .venv/bin/python tests/benchmarks/bench_federation.py --quick    # ~3 min, one repeat, shorter windows
    .venv/bin/python tests/benchmarks/bench_federation.py --json     # also writes results/federation-<time>.json

Needs the anchors venv (``bash scripts/ensure-anchors.sh``). Each aggregator runs twice: "cached" (its
defaults) and "uncached" (ours: metadata_cache_ttl 0 and max_stale 0 -- it still shares one fan-out per
second between requests; VITO: its null memoizer). Scenarios, all with the same gunicorn workers x threads:

1. throughput of merged /collections and /processes with N concurrent clients, cached and uncached;
2. single-client latency of the cached listings (goal: /collections median <= 20 ms, 3 x 300 collections);
3. uncached listing with backends slowed to 50/100/300 ms, against the slowest one (goal: + <= 200 ms);
4. POST /result proxied, against the same request straight to the backend (goal: + <= 20 ms);
5. one of three backends refusing connections, answering 500, hanging: p95 of GET /, /collections,
   /processes, /jobs from 4 clients for a window right after the fault starts (uncached instances, so no
   cache hides it; goal: <= 1 s, /jobs <= 3 s);
6. an outage and a recovery: time until GET / shows the backend offline / online again (goal: <= 30 s).

See README.md beside this file (section Federation) for the method and recorded results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.benchmarks.bench_metadata import machine_description  # noqa: E402
from tests.benchmarks.federation_load import (Fakes, Target, closed_loop, federation_status, sequential,  # noqa: E402
                                              summary, time_until)
from tests.support.anchors import start_vito_aggregator  # noqa: E402
from tests.support.federation import start_aggregator, wait_ready  # noqa: E402

USER = ("bench", "bench-pw")
FAULTS = {"refuse": "stop", "500": "behaviour html_500", "hang": "behaviour hang"}
FAULT_ENDPOINTS = ["/", "/collections", "/processes", "/jobs"]
SLOW = {"b1": 0.05, "b2": 0.1, "b3": 0.3}
RESULT_BODY = json.dumps({"process": {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {"id": "B1_000", "spatial_extent": None,
                                                            "temporal_extent": None}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
             "result": True}}}}).encode()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def start_ours(work: Path, backends: dict, cached: bool, args) -> Target:
    settings = {} if cached else {"metadata_cache_ttl": 0, "metadata_cache_max_stale": 0}
    name = f"ours-{'cached' if cached else 'uncached'}"
    server = start_aggregator(work / name, backends, users=[USER], workers=args.workers, threads=args.threads,
                              **settings)
    wait_ready([server])
    return Target(f"ours {'cached' if cached else 'uncached'}", server.url, stop=server.stop)


def start_vito(work: Path, backends: dict, cached: bool, args) -> Target:
    server = start_vito_aggregator(work / f"vito-{'cached' if cached else 'uncached'}", backends,
                                   memoizer="dict" if cached else "null", users=dict([USER]),
                                   workers=args.workers, threads=args.threads)
    return Target(f"VITO {'cached' if cached else 'uncached'}", server.url.rstrip("/"), stop=server.stop)


def log_in(target: Target) -> None:
    import base64

    from tests.benchmarks.federation_load import Client

    basic = "Basic " + base64.b64encode(f"{USER[0]}:{USER[1]}".encode()).decode()
    sample, body = Client(target, 30).get("/credentials/basic", headers={"Authorization": basic})
    if sample.status != 200:
        raise RuntimeError(f"{target.name}: basic login answered {sample.status}: {body[:300]!r}")
    target.auth = {"Authorization": f"Bearer basic//{json.loads(body)['access_token']}"}


def warm(target: Target, args) -> None:
    """Every worker process fills its caches (VITO's memoizer is per process)."""
    closed_loop(target, ["/collections", "/processes", "/"], clients=args.workers * 3, seconds=0.1,
                timeout=args.timeout)


def throughput(targets: list[Target], direct: Target, args) -> dict:
    results: dict = {}
    for repeat in range(args.repeats):
        for endpoint in ("/collections", "/processes"):
            for target in [direct, *targets]:
                samples, wall = closed_loop(target, [endpoint], clients=args.clients, seconds=args.duration,
                                            timeout=args.timeout)
                figures = summary(samples, wall)
                results.setdefault(endpoint, {}).setdefault(target.name, []).append(figures)
                log(f"throughput {repeat + 1}/{args.repeats} {endpoint} {target.name}: {figures['req_s']:.1f} req/s, "
                    f"p99 {figures['p99_ms']:.0f} ms, {figures['statuses']}")
    return {endpoint: {name: median_of(runs) for name, runs in by_target.items()}
            for endpoint, by_target in results.items()}


def median_of(runs: list[dict]) -> dict:
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
    merged = {k: statistics.median(run[k] for run in runs) for k in keys}
    merged["statuses"] = runs[-1]["statuses"]
    merged["runs"] = len(runs)
    return merged


def single_client(targets: list[Target], direct: Target, args) -> dict:
    results: dict = {}
    for endpoint in ("/collections", "/processes"):
        for target in [direct, *targets]:
            results.setdefault(endpoint, {})[target.name] = summary(
                sequential(target, "GET", endpoint, args.latency_requests, timeout=args.timeout))
    return results


def slowest_backend(fakes: Fakes, targets: list[Target], args) -> dict:
    """Uncached listings while the backends answer after 50/100/300 ms."""
    for backend_id, delay in SLOW.items():
        fakes.command(f"{backend_id} delay {delay}")
    try:
        results: dict = {}
        for endpoint in ("/collections", "/processes"):
            direct = summary(sequential(fakes.target("b3"), "GET", endpoint, 3, timeout=args.timeout))
            results.setdefault(endpoint, {})["direct b3 (slowest)"] = direct
            for target in targets:
                # ours shares a fan-out for 1 s: wait it out, so every request fans out anew
                gap = 1.1 if target.name.startswith("ours") else 0.0
                results[endpoint][target.name] = summary(sequential(
                    target, "GET", endpoint, args.slow_requests, timeout=args.timeout, gap=gap))
        return results
    finally:
        for backend_id in SLOW:
            fakes.command(f"{backend_id} reset")


def proxied_result(fakes: Fakes, targets: list[Target], args) -> dict:
    direct = fakes.target("b1")
    direct.auth = {"Authorization": "Bearer basic//token-of-b1"}
    results = {}
    for target in [direct, *targets]:
        sequential(target, "POST", "/result", 3, timeout=args.timeout, body=RESULT_BODY, auth=True)  # warm-up
        results[target.name] = summary(sequential(target, "POST", "/result", args.result_requests,
                                                  timeout=args.timeout, body=RESULT_BODY, auth=True))
    return results


def faults(fakes: Fakes, targets: list[Target], watcher: Target, args) -> dict:
    results: dict = {}
    for fault, command in FAULTS.items():
        for target in targets:
            fakes.command(f"b3 {command}")
            log(f"fault {fault}: {target.name} for {args.fault_window} s")
            samples, _ = closed_loop(target, FAULT_ENDPOINTS, clients=4, seconds=args.fault_window,
                                     timeout=args.timeout, auth=True)
            results.setdefault(fault, {})[target.name] = {
                endpoint: summary([s for s in samples if s.endpoint == endpoint]) for endpoint in FAULT_ENDPOINTS}
            fakes.command("b3 reset")
            back = time_until(lambda: federation_status(watcher, "b3") == "online", cap=30)
            log(f"  b3 back online at {watcher.name} after {back} s")
    return results


def outage(fakes: Fakes, targets: list[Target], args) -> dict:
    """b3 stops (refused connections), then comes back: when does each aggregator's GET / say so?"""
    results = {}
    fakes.command("b3 stop")
    try:
        started = time.perf_counter()
        for target in targets:  # one after the other, each timed from the start of the outage
            left = args.outage_cap - (time.perf_counter() - started)
            seen = time_until(lambda: federation_status(target, "b3") == "offline", cap=max(left, 0.5))
            results[target.name] = {"offline_after_s": None if seen is None else time.perf_counter() - started}
            log(f"outage: {target.name} offline after {results[target.name]['offline_after_s']}")
    finally:
        fakes.command("b3 start")
    started = time.perf_counter()
    for target in targets:
        if results[target.name]["offline_after_s"] is None:
            results[target.name]["online_after_s"] = None
            continue
        left = args.outage_cap - (time.perf_counter() - started)
        seen = time_until(lambda: federation_status(target, "b3") == "online", cap=max(left, 0.5))
        results[target.name]["online_after_s"] = None if seen is None else time.perf_counter() - started
        log(f"recovery: {target.name} online after {results[target.name]['online_after_s']}")
    results["cap_s"] = args.outage_cap
    return results


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat, shorter windows (~3 min)")
    parser.add_argument("-r", "--repeats", type=int, default=3, help="throughput repeats (medians)")
    parser.add_argument("-c", "--clients", type=int, default=8, help="concurrent clients for throughput")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per throughput measurement")
    parser.add_argument("--latency-requests", type=int, default=100, help="single-client requests per listing")
    parser.add_argument("--slow-requests", type=int, default=8, help="requests per uncached slow listing")
    parser.add_argument("--result-requests", type=int, default=60, help="POST /result requests per target")
    parser.add_argument("--fault-window", type=float, default=10.0, help="seconds of load per fault and target")
    parser.add_argument("--outage-cap", type=float, default=60.0, help="longest wait for offline / online")
    parser.add_argument("--timeout", type=float, default=30.0, help="client timeout per request (s)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of every aggregator")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--only", nargs="+", choices=["throughput", "latency", "slow", "result", "faults", "outage"])
    parser.add_argument("--json", nargs="?", const="", default=None, help="write the raw figures (default path: "
                        "results/federation-<time>.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.duration, args.latency_requests, args.slow_requests = 1, 2.0, 40, 4
        args.result_requests, args.fault_window, args.outage_cap = 20, 6.0, 35.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from tests.benchmarks.federation_report import markdown

    only = set(args.only or ["throughput", "latency", "slow", "result", "faults", "outage"])
    started, load_before = time.time(), os.getloadavg()
    results: dict = {"args": vars(args), "machine": machine_description(),
                     "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    with tempfile.TemporaryDirectory(prefix="bench-federation-") as tmp:
        work = Path(tmp)
        fakes = Fakes(work / "fakes.log")
        targets: dict[str, Target] = {}
        try:
            backends = {bid: fakes.url(bid) for bid in fakes.ports}
            log(f"fake backends on {fakes.ports}; starting the aggregators")
            for cached in (True, False):
                targets[f"ours {'cached' if cached else 'uncached'}"] = start_ours(work, backends, cached, args)
                targets[f"VITO {'cached' if cached else 'uncached'}"] = start_vito(work, backends, cached, args)
            for target in targets.values():
                log_in(target)
                warm(target, args)
            cached = [targets["ours cached"], targets["VITO cached"]]
            uncached = [targets["ours uncached"], targets["VITO uncached"]]
            if "throughput" in only:
                results["throughput"] = throughput([*cached, *uncached], fakes.target("b1"), args)
            if "latency" in only:
                results["latency"] = single_client(cached, fakes.target("b1"), args)
            if "slow" in only:
                results["slow"] = slowest_backend(fakes, uncached, args)
            if "result" in only:
                results["result"] = proxied_result(fakes, cached, args)
            if "faults" in only:
                results["faults"] = faults(fakes, uncached, targets["ours uncached"], args)
            if "outage" in only:
                results["outage"] = outage(fakes, cached, args)
        finally:
            for target in targets.values():
                target.stop()
            fakes.stop()
    results["seconds"] = time.time() - started
    results["load_average"] = [load_before[0], os.getloadavg()[0]]
    print(markdown(results))
    if args.json is not None:
        path = Path(args.json) if args.json else HERE / "results" / f"federation-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, default=str))
        log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
