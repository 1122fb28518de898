"""Benchmark of batch jobs over inputs larger than the Dask workers' memory: peak memory and time per megapixel.

Issue requirement: a batch job over an input at least 4x larger than the configured worker memory limit
completes with peak worker memory under that limit (chunked, streamed writes), and the time per megapixel
stays flat (±20 %) from 10^8 to 10^9 input pixels.

Set-up: a real ``openeo-backend serve --no-job-runner`` (gunicorn) and a real ``openeo-backend worker`` (the
job runner, with its Dask LocalCluster of ``--dask-workers`` processes x ``--dask-threads`` threads, memory
limit ``--memory-limit`` each) sharing one data directory; the synthetic collection of ``batch_data.py``
(2 x 2 tiles of 3700² px, 10 dates, B04 + B08) as a static STAC source. Jobs are created and started with
the ``openeo`` Python client:

- ``ndvi``: load_collection(B04, B08, window, all dates) → ndvi → save_result(GTiff): one NDVI band per
  date, the output is half the input;
- ``composite``: the same → reduce_dimension(t, mean) → save_result(GTiff): the output is 1/20 of the input.

Input sizes are values (dates x bands x y x x) of the loaded cube; windows are centred on the tile grid
(every size mosaics four items per date). Measured per run: wall time from starting the job to seeing it
``finished`` (polled every 0.1 s), the runner's own duration (``usage``), seconds per megapixel of input,
the peak RSS of every Dask worker process (kernel VmHWM, reset before the run, and psutil samples every
``--sample-interval`` s) against the limit, the runner process's peak RSS, CPU seconds, and Dask's memory
warnings (spilling, pausing, restarts) from the runner's log.

    .venv/bin/python tests/benchmarks/bench_batch_memory.py                    # 3 sizes x 2 jobs x 3 runs
    .venv/bin/python tests/benchmarks/bench_batch_memory.py --sizes 1e8 -r 1   # a quick look
    .venv/bin/python tests/benchmarks/batch_data.py --data-dir DIR             # only generate the data

See README.md beside this file for the method and recorded results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import psutil
import rasterio

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import batch_data  # noqa: E402
import ndvi_contenders  # noqa: E402
from bench_metadata import HOST, Server, ServerFailed, free_port, machine_description  # noqa: E402

REPO_ROOT = HERE.parents[1]
RESULTS_DIR = HERE / "results"
DEFAULT_DATA_DIR = Path(os.environ.get("OPENEO_BENCH_DIR") or "/tmp/openeo-bench")
USER, PASSWORD = "bench", "bench-password"
WORKFLOWS = ("ndvi", "composite")
MAX_DEVIATION = 0.20  # time per megapixel: ±20 % (issue requirement)
MIN_INPUT_OVER_LIMIT = 4.0  # input ≥ 4 x the memory limit (issue requirement)
FREE_DISK_GB = 12  # data (~1 GB) + the largest result (uncompressed temporary + COG, ~3.5 GB) + Dask spill
# Dask's memory messages in the runner's log (workers log to the runner's stderr)
DASK_MESSAGES = {
    "pause": re.compile(r"Pausing worker"),
    "unmanaged": re.compile(r"Unmanaged memory use is high"),
    "spill": re.compile(r"[Ss]pill"),
    "restart": re.compile(r"exceeded 95% memory budget|Worker process \d+ was killed"),  # one line per restart
}


@dataclass
class Run:
    workflow: str
    size: float  # the requested input values
    values: int  # input values of the job (dates x bands x side²)
    side: int
    repeat: int
    seconds: float  # start → finished seen by the client
    runner_seconds: float | None  # the job's usage.duration (runner: claim → published)
    worker_peak_mb: dict[str, float]  # per Dask worker pid: VmHWM during the run
    worker_sampled_mb: dict[str, float]  # per Dask worker pid: largest psutil RSS sample
    worker_start_mb: dict[str, float]
    runner_peak_mb: float
    runner_start_mb: float
    cpu_seconds: float  # runner + workers
    others_cpu_seconds: float  # the rest of the machine meanwhile
    output_bytes: int
    chunk_target: int | None = None  # the runner's load chunk target (job log, debug level)
    dask_messages: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def seconds_per_mpx(self) -> float:
        return self.seconds / (self.values / 1e6)

    @property
    def worker_peak(self) -> float:
        return max(self.worker_peak_mb.values()) if self.worker_peak_mb else float("nan")


# ------------------------------------------------------------------------------------------ processes


class Runner:
    """``openeo-backend worker``: the job runner and, as its children, the LocalCluster's worker processes."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path):
        self.argv, self.env, self.log_path = argv, env, log_path
        self.proc: subprocess.Popen | None = None
        self.process: psutil.Process | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.process = psutil.Process(self.proc.pid)

    def workers(self) -> list[psutil.Process]:
        """The Dask worker processes (spawned children; not the multiprocessing resource tracker)."""
        found = []
        try:
            children = self.process.children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for child in children:
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.NoSuchProcess:
                pass
        return found

    def wait_workers(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"openeo-backend worker exited with code {self.proc.returncode}:\n{self.log_tail()}")
            if len(self.workers()) >= count and "job runner" in self.log_text():
                return
            time.sleep(0.2)
        raise ServerFailed(f"the runner's {count} Dask workers not up after {timeout:.0f} s:\n{self.log_tail()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        children = []
        try:
            children = self.process.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for child in children:  # normally gone with the runner; only the pids we saw
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass


def executable() -> str:
    path = Path(sys.executable).parent / "openeo-backend"
    return str(path if path.exists() else Path(shutil.which("openeo-backend") or path))


def backend_env(catalog_json: Path, args: argparse.Namespace) -> dict[str, str]:
    return dict(os.environ, OPENEO_BACKEND_DEMO_CATALOG="false",
                OPENEO_BACKEND_STAC_SOURCES=json.dumps([{"kind": "static", "url": str(catalog_json)}]),
                OPENEO_BACKEND_DASK_WORKERS=str(args.dask_workers),
                OPENEO_BACKEND_DASK_THREADS_PER_WORKER=str(args.dask_threads),
                OPENEO_BACKEND_DASK_MEMORY_LIMIT=args.memory_limit,
                OPENEO_BACKEND_JOB_POLL_INTERVAL=str(args.job_poll_interval),
                OPENEO_BACKEND_JOB_SLOTS="1")


def start_backend(server_dir: Path, catalog_json: Path, args: argparse.Namespace) -> tuple[Server, Runner]:
    shutil.rmtree(server_dir, ignore_errors=True)  # a fresh database and results directory every run
    server_dir.mkdir(parents=True)
    env = backend_env(catalog_json, args)
    added = subprocess.run([executable(), "users", "add", USER, "--password", PASSWORD, "--data-dir",
                            str(server_dir)], env=env, capture_output=True, text=True)
    if added.returncode != 0 and "exists already" not in added.stderr:
        raise ServerFailed(f"openeo-backend users add failed: {added.stderr.strip()}")
    port = free_port()
    server = Server("backend", [executable(), "serve", "--port", str(port), "--data-dir", str(server_dir),
                                "--workers", "1", "--no-job-runner"],
                    env, server_dir / "bench-batch-server.log", port, 1)
    runner = Runner([executable(), "worker", "--data-dir", str(server_dir)], env, server_dir / "bench-batch-runner.log")
    server.start()
    runner.start()
    try:
        server.wait_ready(args.startup_timeout)
        runner.wait_workers(args.dask_workers, args.startup_timeout)
    except BaseException:
        runner.stop()
        server.stop()
        raise
    return server, runner


# ---------------------------------------------------------------------------------------------- jobs


def build_cube(connection, workflow: str, bbox: tuple[float, float, float, float]):
    west, south, east, north = bbox
    first, last = min(batch_data.DATES), max(batch_data.DATES)
    cube = connection.load_collection(
        batch_data.COLLECTION,
        spatial_extent={"west": west, "south": south, "east": east, "north": north, "crs": batch_data.EPSG},
        temporal_extent=[first.isoformat(), (last + dt.timedelta(days=1)).isoformat()], bands=["B04", "B08"])
    cube = cube.ndvi(nir="B08", red="B04")
    if workflow == "composite":
        cube = cube.reduce_dimension("t", "mean")
    return cube.save_result("GTiff")


class Sampler:
    """psutil RSS of the runner and its Dask workers every ``interval`` s, in a thread."""

    def __init__(self, runner: Runner, interval: float):
        self.runner, self.interval = runner, interval
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for process in [self.runner.process, *self.runner.workers()]:
                try:
                    rss = process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                if rss > self.peaks.get(process.pid, 0):
                    self.peaks[process.pid] = rss
            self._stop.wait(self.interval)


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def _mb(value_bytes: float) -> float:
    return value_bytes / 2**20


def run_job(connection, runner: Runner, workflow: str, size: float, repeat: int, args) -> Run:
    bbox, side = batch_data.window(size, args.tile, args.grid)
    values = len(batch_data.DATES) * len(batch_data.BANDS) * side * side
    job = build_cube(connection, workflow, bbox).create_job(title=f"bench {workflow} {size:.0e} #{repeat}",
                                                            log_level="debug")
    ndvi_contenders.wait_quiet(args.quiet_wait, args.quiet_threshold)
    workers = runner.workers()
    pids = sorted(w.pid for w in workers)
    tracked = [runner.process, *workers]
    start_rss = {p.pid: p.memory_info().rss for p in tracked}
    reset = all(ndvi_contenders.reset_peak_rss(p.pid) for p in tracked)
    log_offset = len(runner.log_text())
    cpu_before, busy_before = _cpu(tracked), ndvi_contenders.machine_busy_seconds()
    with Sampler(runner, args.sample_interval) as sampler:
        start = time.perf_counter()
        job.start()
        while True:
            status = job.status()
            if status in ("finished", "error", "canceled"):
                break
            if time.perf_counter() - start > args.job_timeout:
                job.stop()
                raise RuntimeError(f"job {job.job_id} still {status} after {args.job_timeout:.0f} s")
            time.sleep(0.1)
        seconds = time.perf_counter() - start
    busy = ndvi_contenders.machine_busy_seconds() - busy_before
    cpu = _cpu(tracked) - cpu_before
    peaks = {p.pid: ndvi_contenders.proc_status_kb(p.pid)["VmHWM"] * 1024 if reset else 0 for p in tracked
             if psutil.pid_exists(p.pid)}
    log_part = runner.log_text()[log_offset:]
    messages = {name: len(pattern.findall(log_part)) for name, pattern in DASK_MESSAGES.items()}
    if status != "finished":
        errors = [entry.get("message") for entry in job.logs(level="error")]
        raise RuntimeError(f"job {job.job_id} ({workflow}, {size:.0e}) ended {status}: {errors}\n{log_part[-3000:]}")
    metadata = job.describe()
    assets = job.get_results().get_metadata()["assets"]
    result = assets["result.tif"]
    if result.get("proj:shape") != [side, side]:
        raise RuntimeError(f"result shape {result.get('proj:shape')}, expected {[side, side]}")
    chunk = None
    for entry in job.logs(level="debug"):
        found = re.search(r"chunked around (\d+) x", entry.get("message", ""))
        if found:
            chunk = int(found.group(1))
    notes = []
    if sorted(w.pid for w in runner.workers()) != pids:
        notes.append("a Dask worker was replaced during the run")
    others = busy - cpu
    run = Run(workflow, size, values, side, repeat, seconds,
              (metadata.get("usage") or {}).get("duration", {}).get("value"),
              {str(pid): _mb(peaks.get(pid, 0)) for pid in pids},
              {str(pid): _mb(sampler.peaks.get(pid, 0)) for pid in pids},
              {str(pid): _mb(start_rss[pid]) for pid in pids},
              _mb(max(peaks.get(runner.process.pid, 0), sampler.peaks.get(runner.process.pid, 0))),
              _mb(start_rss[runner.process.pid]), cpu, others, int(result.get("file:size", 0)), chunk, messages,
              "; ".join(notes))
    if args.check_file is not None:
        args.check_file.append((job, result))
    else:
        job.delete_job()  # the runner removes the files (GB at the larger sizes)
    return run


def check_against_sync(connection, job, result: dict, workflow: str, size: float, args, out_dir: Path) -> str:
    """The batch result of a small job against the same graph as POST /result (synchronous path)."""
    bbox, _ = batch_data.window(size, args.tile, args.grid)
    batch_path = out_dir / "check-batch.tif"
    job.get_results().download_file(batch_path, name="result.tif")
    sync_path = out_dir / "check-sync.tif"
    build_cube(connection, workflow, bbox).download(sync_path)
    with rasterio.open(batch_path) as batch, rasterio.open(sync_path) as sync:
        if (batch.crs, batch.transform, batch.shape, batch.count) != (sync.crs, sync.transform, sync.shape, sync.count):
            return "batch and synchronous results have different grids"
        if not np.array_equal(batch.read(), sync.read(), equal_nan=True):
            return "batch and synchronous results differ"
    job.delete_job()
    return ""


# -------------------------------------------------------------------------------------------- report


def parse_bytes(text: str) -> int:
    from dask.utils import parse_bytes as dask_parse_bytes

    return int(dask_parse_bytes(text))


def markdown(runs: list[Run], limit_mb: float, workers: int) -> tuple[str, dict]:
    header = ("| job | input values | window px | chunk target px | input float32 GiB | × total limit | "
              "median s (min–max) | s / Mpx | runner s | peak worker RSS MiB (max of runs) | limit MiB | "
              "runner RSS MiB start → peak | CPU-s | output MB | Dask spill / pause / restart lines |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    summary: dict = {}
    for workflow in WORKFLOWS:
        sizes = sorted({r.size for r in runs if r.workflow == workflow})
        per_size = {}
        for size in sizes:
            group = [r for r in runs if r.workflow == workflow and r.size == size]
            secs = [r.seconds for r in group]
            med = statistics.median(secs)
            values = group[0].values
            spmpx = statistics.median(r.seconds_per_mpx for r in group)
            worker_peak = max(r.worker_peak for r in group)
            runner_s = [r.runner_seconds for r in group if r.runner_seconds is not None]
            per_size[size] = {"values": values, "median_seconds": med, "seconds_per_mpx": spmpx,
                              "max_worker_peak_mib": worker_peak,
                              "median_worker_peak_mib": statistics.median(r.worker_peak for r in group),
                              "max_runner_peak_mib": max(r.runner_peak_mb for r in group)}
            messages = {k: sum(r.dask_messages.get(k, 0) for r in group) for k in ("spill", "pause", "restart")}
            lines.append("| " + " | ".join([
                workflow, f"{values:.3g}", f"{group[0].side}²", str(group[0].chunk_target or "?"),
                f"{values * 4 / 2**30:.2f}",
                f"{values * 4 / 2**20 / (limit_mb * workers):.1f}",
                f"{med:.1f} ({min(secs):.1f}–{max(secs):.1f})", f"{spmpx:.4f}",
                f"{statistics.median(runner_s):.1f}" if runner_s else "?",
                f"{statistics.median(r.worker_peak for r in group):.0f} ({worker_peak:.0f})", f"{limit_mb:.0f}",
                f"{min(r.runner_start_mb for r in group):.0f} → {max(r.runner_peak_mb for r in group):.0f}",
                f"{statistics.median(r.cpu_seconds for r in group):.0f}",
                f"{statistics.median(r.output_bytes for r in group) / 1e6:.0f}",
                f"{messages['spill']} / {messages['pause']} / {messages['restart']}"]) + " |")
        if per_size:
            rates = [v["seconds_per_mpx"] for v in per_size.values()]
            deviation = max(abs(r / rates[0] - 1) for r in rates)  # every size against the smallest
            summary[workflow] = {"sizes": {f"{s:.0e}": v for s, v in per_size.items()},
                                 "largest_over_smallest": rates[-1] / rates[0], "max_deviation": deviation}
    lines.append("")
    for workflow, info in summary.items():
        ok_time = info["max_deviation"] <= MAX_DEVIATION
        peak = max(v["max_worker_peak_mib"] for v in info["sizes"].values())
        lines.append(f"- {workflow}: s/Mpx largest / smallest size **{info['largest_over_smallest']:.2f}**, largest "
                     f"deviation from the smallest size's **{info['max_deviation'] * 100:.0f} %** "
                     f"(requirement ±{MAX_DEVIATION * 100:.0f} %: {'yes' if ok_time else '**NO**'}); peak worker RSS "
                     f"**{peak:.0f} MiB** of {limit_mb:.0f} MiB "
                     f"({'under' if peak < limit_mb else '**OVER**'} the limit)")
    return "\n".join(lines), summary


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--repeats", type=int, default=3, help="runs per job and size; medians (3)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e8, 3e8, 1e9],
                        help="input values (dates x bands x y x x) per job (1e8 3e8 1e9)")
    parser.add_argument("--only", nargs="+", choices=WORKFLOWS, help="run only these jobs")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="keeps the generated catalog (reused while unchanged), the server's data dir and the "
                             "job results (default $OPENEO_BENCH_DIR or /tmp/openeo-bench)")
    parser.add_argument("--tile", type=int, default=batch_data.DEFAULT_TILE, help="tile size, px (3700)")
    parser.add_argument("--grid", type=int, default=batch_data.DEFAULT_GRID, help="tiles per side (2)")
    parser.add_argument("--dask-workers", type=int, default=2, help="LocalCluster worker processes (2)")
    parser.add_argument("--dask-threads", type=int, default=1, help="threads per worker (1)")
    parser.add_argument("--memory-limit", default="500MB", help="memory limit per worker (500MB)")
    parser.add_argument("--job-poll-interval", type=float, default=0.2,
                        help="OPENEO_BACKEND_JOB_POLL_INTERVAL: the runner's look at the queue (0.2 s)")
    parser.add_argument("--sample-interval", type=float, default=0.1, help="psutil RSS sampling, s (0.1)")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="before each run, wait up to this many seconds for a quiet machine (30; 0 = never)")
    parser.add_argument("--quiet-threshold", type=float, default=0.3,
                        help="quiet = the whole machine busy less than this many cores over 1 s (0.3)")
    parser.add_argument("--job-timeout", type=float, default=900, help="seconds a job may take (900)")
    parser.add_argument("--startup-timeout", type=float, default=120, help="seconds to wait for the processes (120)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip comparing a small batch result with POST /result (done once, untimed)")
    parser.add_argument("--json", nargs="?", const="auto", metavar="PATH",
                        help=f"also write the raw runs as JSON (default {RESULTS_DIR.relative_to(REPO_ROOT)}/"
                             "batch-memory-<timestamp>.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import openeo

    args = parse_args(argv)
    args.check_file = None
    workflows = [w for w in WORKFLOWS if not args.only or w in args.only]
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(data_dir).free / 1e9
    if free_gb < FREE_DISK_GB:
        print(f"only {free_gb:.1f} GB free in {data_dir}; the benchmark needs ~{FREE_DISK_GB} GB", file=sys.stderr)
        return 2
    limit_mb = _mb(parse_bytes(args.memory_limit))
    largest = max(args.sizes) * 4 / 2**20
    print(f"input of the largest job as float32: {largest / 1024:.2f} GiB = {largest / limit_mb:.1f} x the limit of "
          f"one worker, {largest / (limit_mb * args.dask_workers):.1f} x the total", file=sys.stderr)
    print(f"benchmark catalog in {data_dir} (generated on first use, a few minutes) ...", file=sys.stderr)
    generation = time.monotonic()
    catalog_json = batch_data.ensure_catalog(data_dir, args.tile, args.grid)
    generation = time.monotonic() - generation
    started = dt.datetime.now().astimezone()
    load_before = os.getloadavg()
    inherited = {k: v for k, v in os.environ.items() if k.startswith(("OPENEO_BACKEND_", "GDAL_", "DASK_", "OMP_"))}
    server_dir = data_dir / "server"
    runs: list[Run] = []
    check = "not done"
    server = runner = None
    try:
        print("starting openeo-backend serve --no-job-runner and openeo-backend worker ...", file=sys.stderr)
        server, runner = start_backend(server_dir, catalog_json, args)
        connection = openeo.connect(f"http://{HOST}:{server.port}").authenticate_basic(USER, PASSWORD)
        # Warm-up: imports and GDAL start-up in the runner and the Dask workers; checks one result.
        args.check_file = []
        warm = run_job(connection, runner, "composite", min(args.sizes), 0, args)
        print(f"warm-up: {warm.seconds:.1f} s, peak worker RSS {warm.worker_peak:.0f} MiB", file=sys.stderr)
        if not args.no_check:
            job, result = args.check_file[0]
            check = check_against_sync(connection, job, result, "composite", min(args.sizes), args,
                                       server_dir) or "batch = synchronous result"
            print(f"check: {check}", file=sys.stderr)
        else:
            args.check_file[0][0].delete_job()
        args.check_file = None
        for size in sorted(args.sizes):
            for repeat in range(1, args.repeats + 1):
                order = workflows if repeat % 2 else workflows[::-1]
                for workflow in order:
                    run = run_job(connection, runner, workflow, size, repeat, args)
                    runs.append(run)
                    print(f"{workflow:<10} {run.values:.3g} values  #{repeat}  {run.seconds:7.1f} s "
                          f"({run.seconds_per_mpx:.4f} s/Mpx, runner {run.runner_seconds or 0:.1f} s)  worker peak "
                          f"{', '.join(f'{v:.0f}' for v in run.worker_peak_mb.values())} MiB (sampled "
                          f"{', '.join(f'{v:.0f}' for v in run.worker_sampled_mb.values())})  runner peak "
                          f"{run.runner_peak_mb:.0f} MiB (start {run.runner_start_mb:.0f})  chunk {run.chunk_target}  "
                          f"CPU {run.cpu_seconds:.0f} s  others {run.others_cpu_seconds:.0f} s {run.dask_messages} "
                          f"{run.note}", file=sys.stderr)
    except ServerFailed as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        if runner is not None:
            runner.stop()
        if server is not None:
            server.stop()
    load_after = os.getloadavg()
    table, summary = markdown(runs, limit_mb, args.dask_workers)
    machine = machine_description()
    print(f"\n## Batch jobs over inputs larger than worker memory, {started:%Y-%m-%d %H:%M %Z}\n")
    print(f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"{machine['platform']}, Python {machine['python']}, GDAL {rasterio.__gdal_version__}. LocalCluster "
          f"{args.dask_workers} workers × {args.dask_threads} thread, memory limit {args.memory_limit} "
          f"({limit_mb:.0f} MiB) each. Data: {args.grid}×{args.grid} tiles of {args.tile}² px, "
          f"{len(batch_data.DATES)} dates, B04 + B08 (generated in {generation:.0f} s). Median of {args.repeats} runs. "
          f"Load average (1 min) before/after: {load_before[0]:.1f}/{load_after[0]:.1f}. Check: {check}.")
    if inherited:
        print(f"Inherited settings: {', '.join(f'{k}={v}' for k, v in sorted(inherited.items()))}")
    print()
    print(table)
    notes = sorted({r.note for r in runs if r.note})
    if notes:
        print("Notes: " + "; ".join(notes))
    if args.json:
        path = (RESULTS_DIR / f"batch-memory-{started:%Y%m%dT%H%M%S}.json") if args.json == "auto" else Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "date": started.isoformat(), "machine": machine, "gdal": rasterio.__gdal_version__,
            "settings": {k: str(v) for k, v in vars(args).items() if k not in ("json", "check_file")},
            "memory_limit_mib": limit_mb, "generation_seconds": generation, "check": check,
            "load_average_before": load_before, "load_average_after": load_after, "inherited_env": inherited,
            "summary": summary, "runs": [{**asdict(r), "seconds_per_mpx": r.seconds_per_mpx} for r in runs],
        }, indent=2))
        print(f"results written to {path}", file=sys.stderr)
    over = any(r.worker_peak >= limit_mb for r in runs)
    flat = all(info["max_deviation"] <= MAX_DEVIATION for info in summary.values())
    return 0 if runs and not over and flat else 1


if __name__ == "__main__":
    sys.exit(main())
