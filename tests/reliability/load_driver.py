"""The load suite's driver: small demo graphs of several kinds (each a different result), requests sent all
at once from one thread each, answers decoded to comparable values, latency figures.

Graphs are small on purpose (a 320 m square, i.e. 32 × 32 px, of the demo Sentinel-2 tile): the suite
measures how the server copes with many requests at once, not how fast it computes a big one.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import requests
from rasterio.io import MemoryFile

from backend.demo import DEMO_S2_COLLECTION

JUNE = ["2022-06-01", "2022-07-01"]
KINDS = ("ndvi", "add", "reduce")
TIMEOUT = 600  # seconds one HTTP call may take: generous, a loaded 2-core machine is slow, never wrong


def bbox(index: int) -> dict:
    """A 320 m square of demo tile T1 (x 675000–687800, y 5145000–5157800), a different one per index."""
    west, south = 676000 + (index % 25) * 400, 5146000 + (index // 25) * 400
    return {"west": west, "south": south, "east": west + 320, "north": south + 320, "crs": 32632}


def _load(index: int, bands: list[str]) -> dict:
    return {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "spatial_extent": bbox(index), "temporal_extent": JUNE, "bands": bands}}


def _reduce(data: str, dimension: str, reducer: str) -> dict:
    return {"process_id": "reduce_dimension", "arguments": {
        "data": {"from_node": data}, "dimension": dimension, "reducer": {"process_graph": {
            "r": {"process_id": reducer, "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}}


def _save(data: str) -> dict:
    return {"process_id": "save_result", "arguments": {"data": {"from_node": data}, "format": "GTiff"}, "result": True}


def graph(kind: str, index: int) -> dict:
    """The process graph of one request: ``ndvi`` (mean NDVI of June, GeoTIFF), ``add`` (a number, JSON) or
    ``reduce`` (the maximum red reflectance of June, GeoTIFF); ``index`` moves the area (or the number)."""
    if kind == "ndvi":
        return {"load": _load(index, ["B04", "B08"]),
                "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08",
                                                             "red": "B04"}},
                "mean": _reduce("ndvi", "t", "mean"), "save": _save("mean")}
    if kind == "add":
        return {"add": {"process_id": "add", "arguments": {"x": index, "y": 0.25}, "result": True}}  # JSON
    if kind == "reduce":
        return {"load": _load(index, ["B04"]), "max": _reduce("load", "t", "max"), "save": _save("max")}
    raise ValueError(kind)


def medium_ndvi(index: int) -> dict:
    """Mean NDVI of April to October over a 3 km square (300 × 300 px × 10 dates): ~1 s alone here, several
    seconds when many run at once, longer than the slot wait once was (see test_load.py)."""
    west, south = 676000 + (index % 4) * 100, 5146000 + (index // 4) * 100
    process_graph = graph("ndvi", 0)
    process_graph["load"]["arguments"].update(
        spatial_extent={"west": west, "south": south, "east": west + 3000, "north": south + 3000, "crs": 32632},
        temporal_extent=["2022-04-01", "2022-10-01"])
    return process_graph


def workload(count: int, first: int = 0) -> list[tuple[str, dict]]:
    """``count`` different graphs (indexes from ``first``), the kinds in turn: (name, process graph)."""
    return [(f"{KINDS[i % len(KINDS)]}-{i}", graph(KINDS[i % len(KINDS)], i)) for i in range(first, first + count)]


# --------------------------------------------------------------------------------------------- results


def decode(media_type: str, payload: bytes) -> Any:
    """A result as comparable values: a GeoTIFF as (CRS, transform, dtype, pixels), JSON as its value."""
    if media_type.startswith("image/tiff"):
        with MemoryFile(payload) as memory, memory.open() as raster:
            return ("GTiff", raster.crs.to_string(), tuple(raster.transform), raster.dtypes, raster.read())
    if media_type.startswith("application/json"):
        return ("JSON", json.loads(payload))
    return ("bytes", payload)


def same(a: Any, b: Any) -> bool:
    """Equal results: identical pixels (NaN where NaN), equal JSON values, equal bytes."""
    if a[0] != b[0]:
        return False
    if a[0] == "GTiff":
        return a[1:4] == b[1:4] and a[4].shape == b[4].shape and np.array_equal(a[4], b[4], equal_nan=True)
    return a == b


def fingerprint(value: Any) -> str:
    """A digest of a result's values (to count different results)."""
    if value[0] == "GTiff":
        return hashlib.sha256(repr(value[1:4]).encode() + value[4].tobytes()).hexdigest()
    return hashlib.sha256(repr(value).encode()).hexdigest()


def informative(value: Any) -> bool:
    """A result that tells requests apart (not all nodata)."""
    return value[0] != "GTiff" or bool(np.isfinite(value[4]).any())


# ------------------------------------------------------------------------------------------ concurrency


@dataclass
class Outcome:
    """One call: its name, seconds, and either a value or the problem (status and body start, or exception)."""

    name: str
    seconds: float
    value: Any = None
    problem: str | None = None
    extra: dict = field(default_factory=dict)


def all_at_once(calls: list[tuple[str, Callable[[], Outcome]]]) -> tuple[list[Outcome], float]:
    """Every call in a thread of its own, released together; (outcomes in call order, wall seconds)."""
    outcomes: list[Outcome | None] = [None] * len(calls)
    start = threading.Barrier(len(calls) + 1)

    def run(i: int, name: str, call: Callable[[], Outcome]) -> None:
        start.wait()
        began = time.perf_counter()
        try:
            outcomes[i] = call()
        except Exception as exc:  # noqa: BLE001 - every failure is a finding, reported with its call
            outcomes[i] = Outcome(name, time.perf_counter() - began, problem=f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(i, name, call), name=f"load-{name}")
               for i, (name, call) in enumerate(calls)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return [o for o in outcomes if o is not None], time.perf_counter() - began


@contextmanager
def light_request_during(url: str, delay: float = 1.0) -> Iterator[dict]:
    """Times one GET of the capabilities (no computation, no database) sent ``delay`` s into the phase run
    inside the block: how long a cheap request (a status poll, a load balancer's probe) waits behind the
    load. Yields a dict that holds ``seconds`` and ``status`` once the block ends."""
    seen: dict = {}

    def probe() -> None:
        time.sleep(delay)
        began = time.perf_counter()
        try:
            seen["status"] = requests.get(f"{url}/", timeout=TIMEOUT).status_code
        except requests.RequestException as exc:
            seen["status"] = repr(exc)
        seen["seconds"] = time.perf_counter() - began

    thread = threading.Thread(target=probe, name="light-request")
    thread.start()
    try:
        yield seen
    finally:
        thread.join()
    print(f"[load] a capabilities GET during that phase: {seen['status']} after {seen['seconds']:.2f} s")


def one_by_one(calls: list[tuple[str, Callable[[], Outcome]]]) -> tuple[list[Outcome], float]:
    """The same calls serially; (outcomes, wall seconds)."""
    began = time.perf_counter()
    outcomes = []
    for name, call in calls:
        try:
            outcomes.append(call())
        except Exception as exc:  # noqa: BLE001
            outcomes.append(Outcome(name, 0.0, problem=f"{type(exc).__name__}: {exc}"))
    return outcomes, time.perf_counter() - began


def figures(label: str, outcomes: list[Outcome], wall: float) -> dict:
    """p50, p99 (nearest rank), throughput and errors of one phase; printed for the report."""
    seconds = sorted(o.seconds for o in outcomes if o.problem is None)
    p99 = seconds[max(0, int(np.ceil(0.99 * len(seconds))) - 1)] if seconds else float("nan")
    result = {"phase": label, "calls": len(outcomes), "errors": sum(o.problem is not None for o in outcomes),
              "wall_s": wall, "p50_s": statistics.median(seconds) if seconds else float("nan"), "p99_s": p99,
              "per_s": len(seconds) / wall if wall else float("nan")}
    print(f"[load] {label}: {result['calls']} calls, {result['errors']} errors, {wall:.1f} s, "
          f"p50 {result['p50_s']:.2f} s, p99 {result['p99_s']:.2f} s, {result['per_s']:.2f}/s")
    return result


# ----------------------------------------------------------------------------------------- HTTP calls


def sync_calls(url: str, headers: dict, work: list[tuple[str, dict]]) -> list[tuple[str, Callable[[], Outcome]]]:
    """One POST /result per graph of ``work``, for all_at_once or one_by_one."""
    return [(name, lambda name=name, g=g: post_result(url, headers, name, g)) for name, g in work]


def job_calls(url: str, headers: dict, work: list[tuple[str, dict]]) -> list[tuple[str, Callable[[], Outcome]]]:
    """One batch job per graph of ``work`` (create, start, poll, download)."""
    return [(f"job-{name}", lambda name=name, g=g: run_job(url, headers, f"job-{name}", g)) for name, g in work]


def post_result(url: str, headers: dict, name: str, process_graph: dict) -> Outcome:
    """POST /result; the outcome's value is the decoded result, extra the identifier and costs."""
    began = time.perf_counter()
    response = requests.post(f"{url}/result", json={"process": {"process_graph": process_graph}},
                             headers=headers, timeout=TIMEOUT)
    took = time.perf_counter() - began
    if response.status_code != 200:
        return Outcome(name, took, problem=f"{response.status_code} {response.headers.get('Retry-After', '')} "
                                           f"{response.text[:300]}")
    return Outcome(name, took, decode(response.headers.get("Content-Type", ""), response.content),
                   extra={"id": response.headers.get("OpenEO-Identifier"),
                          "costs": float(response.headers.get("OpenEO-Costs", "nan")),
                          "backend": response.headers.get("OpenEO-Federation-Backend")})


def run_job(url: str, headers: dict, name: str, process_graph: dict, poll: float = 0.5) -> Outcome:
    """Create, start and poll one batch job until it ends, then download its result (one asset)."""
    began = time.perf_counter()
    created = requests.post(f"{url}/jobs", json={"process": {"process_graph": process_graph}, "title": name},
                            headers=headers, timeout=TIMEOUT)
    if created.status_code != 201:
        return Outcome(name, time.perf_counter() - began, problem=f"create: {created.status_code} {created.text[:300]}")
    job_id = created.headers["OpenEO-Identifier"]
    started = requests.post(f"{url}/jobs/{job_id}/results", headers=headers, timeout=TIMEOUT)
    if started.status_code != 202:
        return Outcome(name, time.perf_counter() - began, problem=f"start {job_id}: {started.status_code} "
                                                                  f"{started.text[:300]}")
    deadline = time.monotonic() + TIMEOUT
    while True:
        job = requests.get(f"{url}/jobs/{job_id}", headers=headers, timeout=TIMEOUT)
        status = job.json().get("status") if job.status_code == 200 else f"HTTP {job.status_code} {job.text[:200]}"
        if status in ("finished", "error", "canceled") or job.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(poll)
    took = time.perf_counter() - began
    if status != "finished":
        logs = requests.get(f"{url}/jobs/{job_id}/logs", headers=headers, timeout=TIMEOUT).text[-500:]
        return Outcome(name, took, problem=f"job {job_id}: {status}; logs: {logs}")
    results = requests.get(f"{url}/jobs/{job_id}/results", headers=headers, timeout=TIMEOUT).json()
    data = [a for a in results["assets"].values() if "data" in a.get("roles", ["data"])]
    if len(data) != 1:
        return Outcome(name, took, problem=f"job {job_id}: {len(data)} data assets: {results['assets']}")
    asset = requests.get(data[0]["href"], timeout=TIMEOUT)
    if asset.status_code != 200:
        return Outcome(name, took, problem=f"job {job_id} asset: {asset.status_code} {asset.text[:200]}")
    media_type = data[0].get("type") or asset.headers.get("Content-Type", "")
    return Outcome(name, took, decode(media_type, asset.content),
                   extra={"id": job_id, "costs": job.json()["costs"],
                          "backend": created.headers.get("OpenEO-Federation-Backend")})


# --------------------------------------------------------------------------------------------- checks


def differences(concurrent: list[Outcome], serial: list[Outcome]) -> list[str]:
    """Every problem of either run, and every concurrent value that differs from its serial one."""
    findings = [f"{o.name}: {o.problem}" for o in concurrent + serial if o.problem is not None]
    for c, s in zip(concurrent, serial):
        if c.problem is None and s.problem is None and not same(c.value, s.value):
            findings.append(f"{c.name}: the concurrent result differs from the serial one")
    return findings


def charged_once(entries: dict[str, dict[str, list[float]]], prefix: str, costs: float) -> str | None:
    """None when exactly one ledger ref starts with ``prefix`` (a request's ``sync-<id>``, a job start's
    ``job-<id>-<start>``, the aggregator's ``fed-job:<backend>:<id>#<run>``) and it has one hold, one release
    of that hold and one charge of ``costs``, and nothing else; else what is wrong."""
    refs = [ref for ref in entries if ref.startswith(prefix)]
    if len(refs) != 1:
        return f"{prefix}: {len(refs)} refs {refs}"
    kinds = entries[refs[0]]
    if sorted(kinds) != ["charge", "hold", "release"] or any(len(a) != 1 for a in kinds.values()):
        return f"{refs[0]}: {dict(kinds)}"
    if abs(-kinds["charge"][0] - costs) > 0.0015 or kinds["release"][0] != -kinds["hold"][0]:
        return f"{refs[0]}: charged {kinds['charge']}, costs {costs}, hold {kinds['hold']}, release {kinds['release']}"
    return None
