"""Benchmark of the metadata endpoints under the production WSGI server (gunicorn, as `openeo-backend serve`).

Measures, for GET / (capabilities), /collections, /collections/{id} and /processes, with and without
``Accept-Encoding: gzip``: requests/s, p50/p99 latency, response size and -- the steadiest number on a
shared machine -- the server's CPU milliseconds per request: the CPU time (user + sys) of the gunicorn
master and all its workers, read with psutil before and after a fixed number of requests, divided by that
number. The load generator runs in this process, so its CPU is not counted.

A bare Flask app answering a constant 20 KB JSON document (``baseline_app.py``) is served under the same
gunicorn settings in the same run; CPU-ms ratios to it are comparable between machines.

    .venv/bin/python tests/benchmarks/bench_metadata.py                 # 2000 requests x 3 repeats
    .venv/bin/python tests/benchmarks/bench_metadata.py -n 500 -r 1     # quick look
    .venv/bin/python tests/benchmarks/bench_metadata.py --json          # also write results/*.json

See README.md beside this file for the method and recorded results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import itertools
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
RESULTS_DIR = HERE / "results"
API = "/openeo/1.2"
HOST = "127.0.0.1"
DEFAULT_COLLECTION = "SENTINEL2_L2A_DEMO"

# VITO openeo-driver dummy backend, gunicorn 2 workers x 4 threads, measured on the 2-core benchmark
# machine: server CPU-ms per request. Goal: at most half of these.
DRIVER_CPU_MS = {"capabilities": 1.06, "collections": 3.49, "collection": 1.17, "processes": 54.7}
DRIVER_BASELINE_CPU_MS = 0.38  # bare Flask app, 20 KB constant JSON, same machine and gunicorn settings

ENCODINGS = {
    "identity": {},  # no Accept-Encoding header at all
    "gzip": {"Accept-Encoding": "gzip, deflate"},  # what requests / the openeo Python client send
}


@dataclass
class Case:
    target: str  # "baseline" or "backend"
    name: str  # baseline, capabilities, collections, collection, processes
    path: str
    encoding: str

    @property
    def key(self) -> str:
        return f"{self.name}/{self.encoding}"


@dataclass
class Measurement:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms_per_request: float
    server_sys_ms_per_request: float  # the kernel's part of it (socket I/O, epoll, pipes)
    client_cpu_ms_per_request: float
    bytes: int
    content_encoding: str
    worker_cpu_ms: dict[str, float] = field(default_factory=dict)
    valid: bool = True
    note: str = ""


# ---------------------------------------------------------------------------------------------- servers


class ServerFailed(RuntimeError):
    pass


class Server:
    """A gunicorn master started by us; stopped with SIGTERM to its pid (gunicorn stops its workers)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, port: int,
                 workers: int, cwd: Path = REPO_ROOT):
        self.name, self.argv, self.env, self.log_path, self.port = name, argv, env, log_path, port
        self.workers, self.cwd = workers, cwd
        self.proc: subprocess.Popen | None = None
        self.master: psutil.Process | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.master = psutil.Process(self.proc.pid)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"{self.name} server exited with code {self.proc.returncode}:\n{self.log_tail()}")
            status = _get_status(self.port, "/health")
            if status == 200 and len(self.worker_pids()) >= self.workers:
                return
            time.sleep(0.2)
        raise ServerFailed(f"{self.name} server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        try:
            return sorted(p.pid for p in self.master.children(recursive=True))
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> tuple[float, dict[int, float], float]:
        """user + sys CPU seconds of the master and its live workers: total, per process, and the sys part."""
        per_process, system = {}, 0.0
        for process in [self.master] + self.master.children(recursive=True):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            per_process[process.pid] = times.user + times.system
            system += times.system
        return sum(per_process.values()), per_process, system

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        workers = []
        try:
            workers = self.master.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for worker in workers:  # normally gone with the master; only the pids we saw, nothing broader
            try:
                worker.kill()
            except psutil.NoSuchProcess:
                pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _get_status(port: int, path: str) -> int | None:
    try:
        connection = http.client.HTTPConnection(HOST, port, timeout=5)
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.status
    except (OSError, http.client.HTTPException):
        return None


def _get_json(port: int, path: str) -> tuple[int, object]:
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, None


def backend_server(data_dir: Path, workers: int, threads: int, demo_catalog: bool) -> Server:
    port = free_port()
    env = dict(os.environ, OPENEO_BACKEND_THREADS=str(threads))
    if not demo_catalog:
        env["OPENEO_BACKEND_DEMO_CATALOG"] = "false"
    executable = Path(sys.executable).parent / "openeo-backend"  # the venv's console script
    if not executable.exists():
        executable = Path(shutil.which("openeo-backend") or executable)
    argv = [str(executable), "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers)]
    return Server("backend", argv, env, data_dir / "bench-backend.log", port, workers)


def baseline_server(log_dir: Path, workers: int, threads: int) -> Server:
    """The bare Flask app under the settings backend/server.py gives gunicorn (preloaded like `serve`)."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--chdir", str(HERE), "--bind", f"{HOST}:{port}",
            "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
            "--timeout", "120", "--access-logfile", "-", "--log-level", "info", "--preload", "baseline_app:app"]
    if _gunicorn_has_setting("control_socket_disable"):
        argv.insert(-1, "--no-control-socket")  # idle either way; keeps off the backend's default socket path
    return Server("baseline", argv, dict(os.environ), log_dir / "bench-baseline.log", port, workers)


def _gunicorn_has_setting(name: str) -> bool:
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return False
    return any(setting.name == name for setting in KNOWN_SETTINGS)


# ----------------------------------------------------------------------------------------- load generator


def _request(connection: http.client.HTTPConnection, path: str, headers: dict) -> http.client.HTTPResponse:
    connection.request("GET", path, headers=headers)
    return connection.getresponse()


def warm_up(port: int, path: str, headers: dict, count: int, concurrency: int) -> None:
    """``count`` requests on fresh connections, so that every worker process builds its caches."""
    counter = itertools.count()

    def run():
        while next(counter) < count:
            connection = http.client.HTTPConnection(HOST, port, timeout=120)
            response = _request(connection, path, headers)
            response.read()
            connection.close()
            if response.status != 200:
                raise RuntimeError(f"warm-up GET {path} answered {response.status}")

    _run_threads(run, concurrency)


def load(port: int, path: str, headers: dict, count: int, concurrency: int, per_connection: int = 100):
    """``count`` GETs from ``concurrency`` threads on keep-alive connections; full bodies are read.

    Each thread opens a new connection every ``per_connection`` requests: the kernel hands a new connection
    to whichever worker accepts first, and the CPU per request differs measurably between "all connections
    on one worker" and "spread over both", so a few dozen connections per measurement average that out.
    """
    counter = itertools.count()
    latencies = [0.0] * count
    first: dict = {}
    failures: list[str] = []

    def run():
        connection = http.client.HTTPConnection(HOST, port, timeout=120)
        sent = 0
        try:
            while (i := next(counter)) < count:
                if sent and sent % per_connection == 0:
                    connection.close()  # the next request connects anew
                sent += 1
                for attempt in (1, 2):
                    start = time.perf_counter()
                    try:
                        response = _request(connection, path, headers)
                        body = response.read()
                    except (OSError, http.client.HTTPException):
                        connection.close()  # the server closed an idle keep-alive connection: reconnect once
                        if attempt == 2:
                            raise
                        continue
                    latencies[i] = time.perf_counter() - start
                    break
                if response.status != 200:
                    failures.append(f"{response.status} {body[:200]!r}")
                elif not first:
                    first.update(bytes=len(body), encoding=response.getheader("Content-Encoding") or "-")
        finally:
            connection.close()

    process = psutil.Process()
    client_before = sum(process.cpu_times()[:2])
    start = time.perf_counter()
    _run_threads(run, concurrency)
    seconds = time.perf_counter() - start
    client_cpu = sum(process.cpu_times()[:2]) - client_before
    return seconds, latencies, first, failures, client_cpu


def _run_threads(target, count: int) -> None:
    errors: list[BaseException] = []

    def guarded():
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def measure(server: Server, case: Case, count: int, concurrency: int, warmup: int,
            per_connection: int = 100) -> Measurement:
    headers = ENCODINGS[case.encoding]
    if warmup:
        warm_up(server.port, case.path, headers, warmup, concurrency)
    cpu_before, per_before, sys_before = server.cpu_seconds()
    seconds, latencies, first, failures, client_cpu = load(server.port, case.path, headers, count, concurrency,
                                                           per_connection)
    cpu_after, per_after, sys_after = server.cpu_seconds()
    latencies.sort()
    result = Measurement(
        requests=count, seconds=seconds, rps=count / seconds,
        p50_ms=statistics.median(latencies) * 1000, p99_ms=percentile(latencies, 0.99) * 1000,
        server_cpu_ms_per_request=(cpu_after - cpu_before) * 1000 / count,
        server_sys_ms_per_request=(sys_after - sys_before) * 1000 / count,
        client_cpu_ms_per_request=client_cpu * 1000 / count,
        bytes=first.get("bytes", 0), content_encoding=first.get("encoding", "?"),
        worker_cpu_ms={str(pid): round((per_after[pid] - per_before.get(pid, 0.0)) * 1000, 1)
                       for pid in per_after if pid != server.master.pid})
    if failures:
        result.valid, result.note = False, f"{len(failures)} non-200 answers, e.g. {failures[0]}"
    elif set(per_before) != set(per_after):
        result.valid, result.note = False, "a worker process was replaced during the measurement"
    elif (case.encoding == "gzip" and case.target == "backend" and result.content_encoding != "gzip"
          and result.bytes >= 1024):
        result.note = "answered without gzip"
    return result


def _logs_requests(log_path: Path, path: str) -> bool:
    """Whether the server's output has access-log lines (``"GET <path> HTTP/1.1" 200``)."""
    needle = f'"GET {path} HTTP/1.1" 200'.encode()
    try:
        with open(log_path, "rb") as log:
            return any(needle in line for line in log)
    except OSError:
        return False


# --------------------------------------------------------------------------------------------- reporting


@dataclass
class Summary:
    case: Case
    runs: list[Measurement]

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)

    @property
    def valid(self) -> bool:
        return all(run.valid for run in self.runs)


def machine_description() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model or platform.processor(), "platform": platform.platform(),
            "python": platform.python_version()}


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def pooled_baseline(summaries: list[Summary]) -> Summary | None:
    """The baseline ignores Accept-Encoding: its runs under both headers are pooled into one reference."""
    runs = [run for s in summaries if s.case.name == "baseline" for run in s.runs]
    return Summary(Case("baseline", "baseline", "/", "any"), runs) if runs else None


def markdown_table(summaries: list[Summary]) -> str:
    """One row per endpoint and Accept-Encoding, after the pooled baseline row."""
    baseline = pooled_baseline(summaries)
    baseline_cpu = baseline.median("server_cpu_ms_per_request") if baseline else float("nan")
    header = ("| endpoint | Accept-Encoding | response bytes | req/s | p50 ms | p99 ms "
              "| server CPU-ms/req (min–max) | × baseline | driver CPU-ms (× its baseline) "
              "| goal: CPU-ms ≤ / × baseline ≤ | meets goal: CPU-ms / × baseline |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    rows = ([baseline] if baseline else []) + [s for s in summaries if s.case.name != "baseline"]
    for summary in rows:
        case, first = summary.case, summary.runs[0]
        cpu = summary.median("server_cpu_ms_per_request")
        runs_cpu = [run.server_cpu_ms_per_request for run in summary.runs]
        ratio = cpu / baseline_cpu
        driver = DRIVER_CPU_MS.get(case.name, DRIVER_BASELINE_CPU_MS)
        driver_cell = f"{_fmt(driver)} ({driver / DRIVER_BASELINE_CPU_MS:.2f})"
        if case.name in DRIVER_CPU_MS:
            goal_ms, goal_ratio = driver / 2, driver / 2 / DRIVER_BASELINE_CPU_MS
            goal_cells = [f"{_fmt(goal_ms)} / {goal_ratio:.2f}",
                          f"{'yes' if cpu <= goal_ms else '**NO**'} / {'yes' if ratio <= goal_ratio else '**NO**'}"]
        else:
            goal_cells = ["", ""]
        name = {"capabilities": "`/` capabilities", "collections": "`/collections`",
                "collection": "`/collections/{id}`", "processes": "`/processes`",
                "baseline": "baseline: bare Flask, 20 KB"}[case.name]
        problems = [run.note for run in summary.runs if run.note]
        if problems:
            name += " ⚠ " + problems[0]
        size = f"{first.bytes}" + (" gzip" if first.content_encoding == "gzip" else "")
        encoding = {"gzip": "gzip, deflate", "identity": "none", "any": "either"}[case.encoding]
        cpu_cell = f"{_fmt(cpu)} ({_fmt(min(runs_cpu))}–{_fmt(max(runs_cpu))})"
        cells = [name, encoding, size, f"{summary.median('rps'):.0f}", _fmt(summary.median("p50_ms")),
                 _fmt(summary.median("p99_ms")), cpu_cell, f"{ratio:.2f}", driver_cell] + goal_cells
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--requests", type=int, default=2000, help="requests per endpoint and repeat (2000)")
    parser.add_argument("-c", "--concurrency", type=int, default=4, help="client threads/connections (4)")
    parser.add_argument("-r", "--repeats", type=int, default=3, help="repeats; the median is reported (3)")
    parser.add_argument("--requests-per-connection", type=int, default=100,
                        help="each client thread reconnects after this many keep-alive requests (100)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="warm-up requests per measurement, on fresh connections (100)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker, OPENEO_BACKEND_THREADS (4)")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION,
                        help=f"id for /collections/{{id}} ({DEFAULT_COLLECTION})")
    parser.add_argument("--only", nargs="+", choices=["capabilities", "collections", "collection", "processes"],
                        help="benchmark only these endpoints (the baseline always runs)")
    parser.add_argument("--encodings", nargs="+", choices=list(ENCODINGS), default=list(ENCODINGS))
    parser.add_argument("--no-demo-catalog", action="store_true",
                        help="serve without the demo catalog (OPENEO_BACKEND_DEMO_CATALOG=false): /collections is "
                             "empty unless OPENEO_BACKEND_STAC_SOURCES is set, /collections/{id} is skipped if absent")
    parser.add_argument("--data-dir", type=Path,
                        help="backend data dir to use (and keep), e.g. to reuse a generated demo catalog; "
                             "default: a temporary directory, removed afterwards")
    parser.add_argument("--startup-timeout", type=float, default=600,
                        help="seconds to wait for /health (first start generates the demo catalog) (600)")
    parser.add_argument("--json", nargs="?", const="auto", metavar="PATH",
                        help=f"also write the results as JSON (default path: {RESULTS_DIR.relative_to(REPO_ROOT)}/"
                             "metadata-<timestamp>.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now().astimezone()
    load_before = os.getloadavg()
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="openeo-bench-")) if temporary else args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    inherited = {k: v for k, v in os.environ.items() if k.startswith("OPENEO_BACKEND_")}
    backend = backend_server(data_dir, args.workers, args.threads, demo_catalog=not args.no_demo_catalog)
    baseline = baseline_server(data_dir, args.workers, args.threads)
    servers = [baseline, backend]
    try:
        for server in servers:
            server.start()
        for server in servers:
            print(f"waiting for the {server.name} server (gunicorn master pid {server.proc.pid}) on port "
                  f"{server.port} ...", file=sys.stderr)
            try:
                server.wait_ready(args.startup_timeout)
            except ServerFailed as exc:
                message = str(exc)
                if server is backend and ("backend.demo" in message or "backend/demo" in message):
                    message += ("\n\nThe demo catalog generator (backend.demo) failed; rerun with "
                                "--no-demo-catalog to benchmark with an empty /collections.")
                print(message, file=sys.stderr)
                return 2

        names = args.only or ["capabilities", "collections", "collection", "processes"]
        paths = {"capabilities": f"{API}/", "collections": f"{API}/collections",
                 "collection": f"{API}/collections/{args.collection}", "processes": f"{API}/processes"}
        _, listing = _get_json(backend.port, paths["collections"])
        collection_ids = [c["id"] for c in listing.get("collections", [])] if isinstance(listing, dict) else []
        _, process_listing = _get_json(backend.port, paths["processes"])
        process_count = len(process_listing.get("processes", [])) if isinstance(process_listing, dict) else 0
        notes = []
        if "collection" in names and _get_status(backend.port, paths["collection"]) != 200:
            if not args.no_demo_catalog:
                print(f"collection {args.collection} not served (collections: {collection_ids}); "
                      f"see {backend.log_path}", file=sys.stderr)
                return 2
            names = [n for n in names if n != "collection"]
            notes.append(f"/collections/{args.collection} skipped: not served without the demo catalog")

        cases = [Case("baseline", "baseline", "/", e) for e in args.encodings]
        cases += [Case("backend", name, paths[name], e) for name in names for e in args.encodings]
        runs: dict[str, list[Measurement]] = {case.key: [] for case in cases}
        for case in cases:  # one untimed round first: caches built, code paths and connections exercised
            server = baseline if case.target == "baseline" else backend
            warm_up(server.port, case.path, ENCODINGS[case.encoding], args.warmup, args.concurrency)
            load(server.port, case.path, ENCODINGS[case.encoding], min(args.requests, 500), args.concurrency)
        for repeat in range(1, args.repeats + 1):
            for case in cases:  # interleaved, so slow drifts of the machine hit every case alike
                server = baseline if case.target == "baseline" else backend
                result = measure(server, case, args.requests, args.concurrency, args.warmup,
                                 args.requests_per_connection)
                runs[case.key].append(result)
                print(f"repeat {repeat}/{args.repeats} {case.key:<24} {result.rps:7.0f} req/s  "
                      f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                      f"server {result.server_cpu_ms_per_request:7.3f} CPU-ms/req  "
                      f"client {result.client_cpu_ms_per_request:6.3f}  {result.bytes} B {result.note}",
                      file=sys.stderr)
        summaries = [Summary(case, runs[case.key]) for case in cases]
        load_after = os.getloadavg()
        if names and not _logs_requests(backend.log_path, paths[names[0]]):
            notes.append("the backend wrote no access log, the baseline did: ratios are in the backend's favour")

        machine = machine_description()
        print(f"\n## Metadata endpoints, {started:%Y-%m-%d %H:%M %Z}\n")
        print(f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['platform']}, "
              f"Python {machine['python']}. gunicorn gthread, {args.workers} workers × {args.threads} threads "
              f"(access log on, as `serve` configures it). Load: {args.requests} requests per endpoint from "
              f"{args.concurrency} threads on keep-alive connections ({args.requests_per_connection} requests "
              f"each), median of {args.repeats} repeats. Collections served: {len(collection_ids)} "
              f"({', '.join(collection_ids) or 'none'}); processes: {process_count}. Load average (1 min) "
              f"before/after: {load_before[0]:.1f}/{load_after[0]:.1f}.")
        if inherited:
            print(f"Inherited settings: {', '.join(f'{k}={v}' for k, v in sorted(inherited.items()))}")
        for note in notes:
            print(f"Note: {note}")
        print()
        print(markdown_table(summaries))
        print()

        if args.json:
            path = (RESULTS_DIR / f"metadata-{started:%Y%m%dT%H%M%S}.json") if args.json == "auto" else Path(args.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({
                "date": started.isoformat(), "machine": machine,
                "settings": {k: v for k, v in vars(args).items() if k not in ("json", "data_dir")},
                "collections": collection_ids, "process_count": process_count, "notes": notes,
                "load_average_before": load_before, "load_average_after": load_after,
                "baseline_cpu_ms_per_request": pooled_baseline(summaries).median("server_cpu_ms_per_request"),
                "inherited_env": inherited,
                "driver_reference_cpu_ms": DRIVER_CPU_MS, "driver_reference_baseline_cpu_ms": DRIVER_BASELINE_CPU_MS,
                "results": [{**asdict(s.case),
                             "median_server_cpu_ms_per_request": s.median("server_cpu_ms_per_request"),
                             "median_rps": s.median("rps"), "median_p50_ms": s.median("p50_ms"),
                             "median_p99_ms": s.median("p99_ms"), "runs": [asdict(r) for r in s.runs]}
                            for s in summaries],
            }, indent=2))
            print(f"results written to {path}", file=sys.stderr)
        return 0
    finally:
        for server in servers:
            server.stop()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
