"""Is each backend up? A background monitor with a circuit breaker.

``HealthMonitor`` probes every backend's capabilities document (``GET <url>``) every ``interval`` s.
Capabilities rather than ``/health``: every openEO backend must answer them at the URL the federation
lists, while ``/health`` is not in the API (ours is at the server root, others have none), and an
answer with ``api_version`` proves it is an openEO API root, not just some web server.

Circuit breaker: ``failure_threshold`` consecutive failures (probes, and failures real requests report
through ``record_failure``) open the circuit: the backend is "offline", skipped at once by every call
and reported in ``federation:missing``, until its next successful probe closes it again. After a
failure a backend is re-probed within ``recheck`` s instead of waiting a whole interval, so with the
defaults (10 s, 2 failures, 2 s re-check, 3 s probe timeout) an outage shows within ~18 s and a recovery
within ~13 s.

Probes run on the monitor's own small pool and never block its loop, so a hung backend delays no one.
Start the monitor in each serving process after gunicorn forks (threads do not survive a fork).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Literal

from aggregator.federation.backends import BackendConfig, BackendRegistry
from aggregator.federation.errors import BackendResponseInvalid, UpstreamError
from aggregator.federation.upstream import Timeouts, Upstream

log = logging.getLogger(__name__)

Status = Literal["online", "offline"]
Probe = Callable[[BackendConfig], None]


@dataclass(frozen=True)
class HealthEvent:
    at: datetime
    ok: bool
    response_time: float | None  # seconds; None when it failed
    error: str | None = None
    source: Literal["check", "request"] = "check"


@dataclass(frozen=True)
class BackendHealth:
    """One backend's health as seen now (an immutable copy)."""

    backend_id: str
    status: Status | None = None  # None: not observed yet
    circuit_open: bool = False
    consecutive_failures: int = 0
    last_status_check: datetime | None = None
    last_successful_check: datetime | None = None
    last_response_time: float | None = None
    last_error: str | None = None
    history: tuple[HealthEvent, ...] = ()


@dataclass
class _State:
    health: BackendHealth
    history: deque
    next_due: float = 0.0
    probing: bool = False


class CapabilitiesProbe:
    """The default probe: ``GET <url>`` must give a JSON object with ``api_version`` within ``timeout`` s."""

    def __init__(self, timeout: float = 3.0, connect_timeout: float = 1.0):
        self.timeouts = Timeouts(connect=min(connect_timeout, timeout), metadata=timeout)
        self._lock = threading.Lock()
        self._upstreams: dict[str, Upstream] = {}

    def __call__(self, config: BackendConfig) -> None:
        with self._lock:
            upstream = self._upstreams.get(config.id)
            if upstream is None or upstream.config != config:
                # No health signals: the probe is what closes an open circuit, so it must always call.
                upstream = self._upstreams[config.id] = Upstream(config, timeouts=self.timeouts, pool_size=2)
        document = upstream.get_json("")
        if "api_version" not in document:
            raise BackendResponseInvalid(config.id, "its capabilities (GET of its url) have no api_version: "
                                                    "not an openEO API root")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class HealthMonitor:
    """Background probes + circuit breaker; implements ``upstream.HealthSignals``. Thread-safe."""

    def __init__(self, registry: BackendRegistry, *, interval: float = 10.0, timeout: float = 3.0,
                 failure_threshold: int = 2, recheck: float = 2.0, history_size: int = 60,
                 probe: Probe | None = None, max_parallel_probes: int = 8):
        self.registry = registry
        self.interval = interval
        self.failure_threshold = failure_threshold
        self.recheck = min(recheck, interval)
        self.history_size = history_size
        self.probe = probe or CapabilitiesProbe(timeout)
        self.max_parallel_probes = max_parallel_probes
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pid: int | None = None
        registry.subscribe(self.wake)  # a new backend is probed at once

    def wake(self) -> None:
        """Let the loop look at the registry and the due probes now."""
        self._wake.set()

    # -- circuit breaker (HealthSignals) --

    def is_open(self, backend_id: str) -> bool:
        state = self._states.get(backend_id)
        return state is not None and state.health.circuit_open

    def available(self, backend_id: str) -> bool:
        return not self.is_open(backend_id)

    def record_success(self, backend_id: str) -> None:
        """A real request got an answer: the failure streak ends (an open circuit waits for a probe)."""
        state = self._states.get(backend_id)
        if state is not None and not state.health.consecutive_failures:
            return  # the common case, without the lock
        with self._lock:
            state = self._state(backend_id)
            if state.health.consecutive_failures and not state.health.circuit_open:
                state.health = replace(state.health, consecutive_failures=0)

    def record_failure(self, backend_id: str, error: UpstreamError) -> None:
        """A real request failed because of the backend: counts like a failed probe, and hastens the next."""
        with self._lock:
            state = self._state(backend_id)
            was_open = state.health.circuit_open
            self._count_failure(state, str(error), checked=False)
            if state.health.circuit_open and not was_open:
                state.history.append(HealthEvent(utcnow(), False, None, str(error), "request"))
                state.health = replace(state.health, history=tuple(state.history))
            state.next_due = min(state.next_due, time.monotonic() + self.recheck)
        self._wake.set()

    # -- reading --

    def health(self, backend_id: str) -> BackendHealth:
        with self._lock:
            return self._state(backend_id).health

    def all_health(self) -> dict[str, BackendHealth]:
        """Health of every active backend, in registry order."""
        with self._lock:
            return {config.id: self._state(config.id).health for config in self.registry.snapshot()}

    # -- probing --

    def check(self, backend_id: str) -> BackendHealth:
        """Probe one backend now, in this thread (CLI ``backends check``, tests); returns its new health."""
        config = self.registry.get(backend_id)
        if config is None:
            raise KeyError(backend_id)
        self._probe_and_record(config)
        return self.health(backend_id)

    def check_all(self) -> dict[str, BackendHealth]:
        """Probe every active backend now, in parallel, and wait for all."""
        configs = self.registry.snapshot()
        with ThreadPoolExecutor(max_workers=max(1, min(len(configs), self.max_parallel_probes))) as pool:
            list(pool.map(self._probe_and_record, configs))
        return self.all_health()

    def _probe_and_record(self, config: BackendConfig) -> None:
        started = time.monotonic()
        try:
            self.probe(config)
        except Exception as exc:  # any probe failure means "not usable", whatever its type
            error = str(exc) if isinstance(exc, UpstreamError) else f"{type(exc).__name__}: {exc}"
            self._record_probe(config.id, False, None, error)
        else:
            self._record_probe(config.id, True, time.monotonic() - started, None)

    def _record_probe(self, backend_id: str, ok: bool, elapsed: float | None, error: str | None) -> None:
        now = utcnow()
        with self._lock:
            state = self._state(backend_id)
            state.probing = False
            state.history.append(HealthEvent(now, ok, elapsed, error))
            if ok:
                if state.health.circuit_open:
                    log.warning("backend '%s' is back online", backend_id)
                state.health = replace(state.health, status="online", circuit_open=False, consecutive_failures=0,
                                       last_status_check=now, last_successful_check=now,
                                       last_response_time=elapsed, last_error=None, history=tuple(state.history))
                state.next_due = time.monotonic() + self.interval
            else:
                self._count_failure(state, error, checked=True, at=now)
                state.health = replace(state.health, history=tuple(state.history))
                state.next_due = time.monotonic() + (self.interval if state.health.circuit_open else self.recheck)
        self._wake.set()  # the loop may sleep longer than a re-check's delay

    def _count_failure(self, state: _State, error: str | None, *, checked: bool, at: datetime | None = None) -> None:
        failures = state.health.consecutive_failures + 1
        opened = failures >= self.failure_threshold
        if opened and not state.health.circuit_open:
            log.warning("backend '%s' is offline after %d failures: %s", state.health.backend_id, failures, error)
        changes = {"consecutive_failures": failures, "last_error": error, "circuit_open": opened}
        if opened:
            changes["status"] = "offline"
        if checked or opened:
            changes["last_status_check"] = at or utcnow()
        state.health = replace(state.health, **changes)

    def _state(self, backend_id: str) -> _State:
        state = self._states.get(backend_id)
        if state is None:
            state = _State(BackendHealth(backend_id), deque(maxlen=self.history_size))
            self._states = {**self._states, backend_id: state}  # copy-on-write: is_open reads without lock
        return state

    # -- the background loop --

    def start(self) -> "HealthMonitor":
        """Start probing in a daemon thread of this process (idempotent; call it after a fork)."""
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return self
        if self._pid is not None and self._pid != os.getpid():
            # Forked from a process that had started us: its threads are gone, its lock may look held.
            self._lock = threading.Lock()
            self._wake, self._stop = threading.Event(), threading.Event()
            self._states = {}
        self._pid = os.getpid()
        self._stop.clear()
        for state in self._states.values():
            state.probing = False  # probes cancelled by an earlier stop()
        self._pool = ThreadPoolExecutor(max_workers=self.max_parallel_probes, thread_name_prefix="health-probe")
        self._thread = threading.Thread(target=self._run, name="health-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._thread = self._pool = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before looking, so a wake-up during the round is not lost
            try:
                next_due = self._launch_due_probes()
            except Exception:  # the loop must outlive any bug in one round
                log.exception("health monitor round failed")
                next_due = time.monotonic() + self.interval
            self._wake.wait(max(0.01, min(next_due - time.monotonic(), self.interval)))

    def _launch_due_probes(self) -> float:
        now = time.monotonic()
        configs = self.registry.snapshot()
        due: list[BackendConfig] = []
        with self._lock:
            active = {config.id for config in configs}
            self._states = {k: v for k, v in self._states.items() if k in active}
            for config in configs:
                state = self._state(config.id)
                if not state.probing and state.next_due <= now:
                    state.probing = True
                    due.append(config)
            pending = [s.next_due for s in self._states.values() if not s.probing]
        for config in due:
            self._pool.submit(self._probe_and_record, config)
        return min(pending, default=now + self.interval)
