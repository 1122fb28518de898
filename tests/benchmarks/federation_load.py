"""The load generator and the servers of bench_federation.py: stdlib http.client on keep-alive connections,
one per client thread, every body read completely; latency = send to last body byte. A request that takes
longer than ``timeout`` counts as a timeout (the connection is dropped and reopened)."""

from __future__ import annotations

import http.client
import json
import math
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent


@dataclass
class Target:
    """One server under test: its API root (``http://host:port/openeo/1.2``) and how to stop it."""

    name: str
    api: str
    stop: object = None  # callable
    auth: dict = field(default_factory=dict)  # {"Authorization": ...} once logged in

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.api)
        return parts.hostname, parts.port

    def path(self, endpoint: str) -> str:
        return urlsplit(self.api).path.rstrip("/") + "/" + endpoint.lstrip("/")


@dataclass
class Sample:
    seconds: float
    status: int | None  # None: timed out or the connection failed
    endpoint: str = ""
    size: int = 0  # body bytes


class Client:
    """One keep-alive connection to a target (not thread-safe: one per thread)."""

    def __init__(self, target: Target, timeout: float):
        self.target, self.timeout = target, timeout
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, endpoint: str, *, body: bytes | None = None, headers: dict | None = None,
                auth: bool = False) -> tuple[Sample, bytes]:
        headers = {**(headers or {}), **(self.target.auth if auth else {})}
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        start = time.perf_counter()
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(*self.target.host_port, timeout=self.timeout)
            try:
                self.connection.request(method, self.target.path(endpoint), body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                return Sample(time.perf_counter() - start, response.status, endpoint, len(data)), data
            except (OSError, http.client.HTTPException):
                self.close()
                elapsed = time.perf_counter() - start
                # a kept-alive connection the server had closed: once more at once; else a failure
                if attempt == 2 or elapsed > 0.05:
                    return Sample(elapsed, None, endpoint), b""
        raise AssertionError("unreachable")

    def get(self, endpoint: str, **kwargs) -> tuple[Sample, bytes]:
        return self.request("GET", endpoint, **kwargs)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def run_threads(target, count: int) -> None:
    errors: list[BaseException] = []

    def guarded(index: int):
        try:
            target(index)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def closed_loop(target: Target, endpoints: list[str], *, clients: int, seconds: float, timeout: float,
                auth: bool = False) -> tuple[list[Sample], float]:
    """``clients`` threads, each sending its next request as soon as the last one answered, cycling through
    ``endpoints`` (thread i starts at endpoint i), for ``seconds``; requests in flight at the end finish.
    Returns every sample and the wall time until the last one finished."""
    samples: list[Sample] = []
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds

    def run(index: int):
        client, mine, i = Client(target, timeout), [], index
        try:
            while time.perf_counter() < deadline:
                sample, _ = client.get(endpoints[i % len(endpoints)], auth=auth)
                mine.append(sample)
                i += 1
        finally:
            client.close()
            with lock:
                samples.extend(mine)

    run_threads(run, clients)
    return samples, time.perf_counter() - start


def sequential(target: Target, method: str, endpoint: str, count: int, *, timeout: float, body: bytes | None = None,
               auth: bool = False, gap: float = 0.0) -> list[Sample]:
    client = Client(target, timeout)
    samples = []
    try:
        for _ in range(count):
            samples.append(client.request(method, endpoint, body=body, auth=auth)[0])
            if gap:
                time.sleep(gap)
    finally:
        client.close()
    return samples


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank; nan for no values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else math.nan


def summary(samples: list[Sample], wall: float | None = None) -> dict:
    """Latency figures in ms over all samples (timeouts and failures included at their elapsed time)."""
    seconds = [s.seconds for s in samples]
    result = {"n": len(samples), "statuses": dict(Counter(str(s.status) for s in samples)),
              "p50_ms": percentile(seconds, 0.5) * 1000, "p95_ms": percentile(seconds, 0.95) * 1000,
              "p99_ms": percentile(seconds, 0.99) * 1000, "max_ms": max(seconds, default=math.nan) * 1000,
              "median_ms": (statistics.median(seconds) * 1000) if seconds else math.nan,
              "bytes": statistics.median(s.size for s in samples) if samples else 0}
    if wall:
        result["req_s"] = len(samples) / wall
    return result


class Fakes:
    """federation_fakes.py as a child process, driven through its stdin."""

    def __init__(self, log_path: Path):
        self._log = log_path.open("w")
        self.process = subprocess.Popen([sys.executable, str(HERE / "federation_fakes.py")], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake backends did not start: see {log_path}")
        self.ports: dict[str, int] = json.loads(line)

    def url(self, backend_id: str) -> str:
        return f"http://127.0.0.1:{self.ports[backend_id]}/openeo/1.2/"

    def target(self, backend_id: str) -> Target:
        return Target(f"direct {backend_id}", self.url(backend_id).rstrip("/"))

    def command(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        answer = self.process.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"fake backends: {line!r} -> {answer!r}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


def federation_status(target: Target, backend_id: str, timeout: float = 10.0) -> str | None:
    """``federation.<backend_id>.status`` of GET / (None if the aggregator did not answer)."""
    client = Client(target, timeout)
    try:
        sample, body = client.get("/")
        if sample.status != 200:
            return None
        return json.loads(body).get("federation", {}).get(backend_id, {}).get("status")
    except ValueError:
        return None
    finally:
        client.close()


def time_until(predicate, cap: float, interval: float = 0.25) -> float | None:
    """Seconds until ``predicate()`` holds; None if not within ``cap``."""
    start = time.perf_counter()
    while time.perf_counter() - start < cap:
        if predicate():
            return time.perf_counter() - start
        time.sleep(interval)
    return None
