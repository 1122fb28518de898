"""Markdown tables of bench_federation.py's results (stdout), ours and VITO's side by side."""

from __future__ import annotations

import math

GOALS = {"cached_median_ms": 20.0, "slow_extra_ms": 200.0, "result_extra_ms": 20.0, "get_p95_ms": 1000.0,
         "jobs_p95_ms": 3000.0, "status_s": 30.0}


def fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def statuses(figures: dict) -> str:
    return ", ".join(f"{'timeout/refused' if k == 'None' else k}×{v}" for k, v in sorted(figures["statuses"].items()))


def verdict(value, goal) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no"
    return "yes" if value <= goal else "no"


def markdown(results: dict) -> str:
    out: list[str] = []
    machine = results["machine"]
    args = results["args"]
    out.append(f"{results['started']}; {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['platform']}, "
               f"Python {machine['python']}; aggregators: gunicorn {args['workers']} workers × {args['threads']} "
               f"threads; load average {fmt(results['load_average'][0])} → {fmt(results['load_average'][1])}; "
               f"whole run {results['seconds']:.0f} s{' (--quick)' if args['quick'] else ''}.\n")
    if "throughput" in results:
        out.append(f"Throughput, {args['clients']} concurrent clients, {args['duration']} s per measurement, "
                   f"median of {args['repeats']}:\n")
        out.append("| endpoint | server | req/s | × direct backend | p50 ms | p99 ms | answers (last run) |")
        out.append("|---|---|---|---|---|---|---|")
        for endpoint, by_target in results["throughput"].items():
            base = by_target["direct b1"]["req_s"]
            for name, f in by_target.items():
                out.append(f"| `{endpoint}` | {name} | {fmt(f['req_s'])} | {fmt(f['req_s'] / base, 2)} | "
                           f"{fmt(f['p50_ms'])} | {fmt(f['p99_ms'])} | {statuses(f)} |")
        out.append("")
    if "latency" in results:
        out.append(f"Cached listing, one client, {args['latency_requests']} requests (goal: /collections median ≤ "
                   f"{GOALS['cached_median_ms']:.0f} ms with 3 × 300 collections):\n")
        out.append("| endpoint | server | response bytes | median ms | p95 ms | answers | meets goal |")
        out.append("|---|---|---|---|---|---|---|")
        for endpoint, by_target in results["latency"].items():
            for name, f in by_target.items():
                goal = verdict(f["median_ms"], GOALS["cached_median_ms"]) if endpoint == "/collections" and \
                    not name.startswith("direct") else ""
                out.append(f"| `{endpoint}` | {name} | {f['bytes']:.0f} | {fmt(f['median_ms'])} | {fmt(f['p95_ms'])} | "
                           f"{statuses(f)} | {goal} |")
        out.append("")
    if "slow" in results:
        out.append(f"Uncached listing, backends answering after 50 / 100 / 300 ms, {args['slow_requests']} "
                   "sequential requests (goal: slowest backend + ≤ 200 ms):\n")
        out.append("| endpoint | server | median ms | max ms | + over slowest backend, ms | meets goal |")
        out.append("|---|---|---|---|---|---|")
        for endpoint, by_target in results["slow"].items():
            slowest = by_target["direct b3 (slowest)"]["median_ms"]
            for name, f in by_target.items():
                extra = f["median_ms"] - slowest
                goal = "" if name.startswith("direct") else verdict(extra, GOALS["slow_extra_ms"])
                out.append(f"| `{endpoint}` | {name} | {fmt(f['median_ms'])} | {fmt(f['max_ms'])} | "
                           f"{'' if name.startswith('direct') else fmt(extra)} | {goal} |")
        out.append("")
    if "result" in results:
        out.append(f"POST /result proxied vs straight to the backend, {args['result_requests']} sequential "
                   "requests (goal: + ≤ 20 ms):\n")
        out.append("| server | median ms | p95 ms | + over direct, ms | meets goal | answers |")
        out.append("|---|---|---|---|---|---|")
        direct = results["result"]["direct b1"]["median_ms"]
        for name, f in results["result"].items():
            extra = f["median_ms"] - direct
            own = name.startswith("direct")
            out.append(f"| {name} | {fmt(f['median_ms'])} | {fmt(f['p95_ms'])} | {'' if own else fmt(extra)} | "
                       f"{'' if own else verdict(extra, GOALS['result_extra_ms'])} | {statuses(f)} |")
        out.append("")
    if "faults" in results:
        out.append(f"One of three backends faulty, uncached instances, 4 clients for {args['fault_window']} s from "
                   f"the start of the fault, client timeout {args['timeout']:.0f} s (goal: p95 ≤ 1 s, /jobs ≤ 3 s):\n")
        out.append("| fault | server | `/` p95 ms | `/collections` p95 ms | `/processes` p95 ms | `/jobs` p95 ms | "
                   "max ms | answers (all four) | meets goal |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for fault, by_target in results["faults"].items():
            for name, by_endpoint in by_target.items():
                p95 = {e: by_endpoint[e]["p95_ms"] for e in by_endpoint}
                worst = max(f["max_ms"] for f in by_endpoint.values())
                answers: dict = {}
                for f in by_endpoint.values():
                    for k, v in f["statuses"].items():
                        answers[k] = answers.get(k, 0) + v
                ok = all(verdict(v, GOALS["jobs_p95_ms" if e == "/jobs" else "get_p95_ms"]) == "yes"
                         for e, v in p95.items())
                out.append(f"| {fault} | {name} | " + " | ".join(fmt(p95[e], 0) for e in by_endpoint)
                           + f" | {fmt(worst, 0)} | {statuses({'statuses': answers})} | {'yes' if ok else 'no'} |")
        out.append("")
    if "outage" in results:
        cap = results["outage"]["cap_s"]
        out.append(f"Outage (backend stops: refused) and recovery, GET / polled every 0.25 s, at most {cap:.0f} s "
                   "(goal: ≤ 30 s each):\n")
        out.append("| server | offline after s | online again after s | meets goal |")
        out.append("|---|---|---|---|")
        for name, f in results["outage"].items():
            if name == "cap_s":
                continue
            off, on = f["offline_after_s"], f["online_after_s"]
            off_text = fmt(off) if off is not None else f"not within {cap:.0f}"
            on_text = fmt(on) if on is not None else ("—" if off is None else f"not within {cap:.0f}")
            ok = off is not None and on is not None and off <= GOALS["status_s"] and on <= GOALS["status_s"]
            out.append(f"| {name} | {off_text} | {on_text} | {'yes' if ok else 'no'} |")
        out.append("")
    return "\n".join(out)
