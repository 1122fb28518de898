"""Ask several backends at once and answer by a deadline: ``fan_out(backends, call, deadline=...)``.

The result maps straight onto the federation extension: ``successes`` feed the merged answer and
``federation:backends``; ``failures`` (their keys) are ``federation:missing``.

Calls run on one shared, bounded thread pool. The caller never waits past the deadline: a hung backend's
call keeps its pool thread until the call's own read timeout, but at most ``max_pending_per_backend``
calls per backend may be pending at once, so a hung backend cannot take the whole pool; beyond that its
calls fail at once. Backends whose circuit is open fail at once without a call; a missed deadline counts
as a failure for the backend's circuit breaker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterable, Protocol, TypeVar

from aggregator.federation.errors import BackendResponseInvalid, BackendTimeout, BackendUnavailable, UpstreamError

log = logging.getLogger(__name__)

T = TypeVar("T")
_creation_lock = threading.Lock()  # held only while a process creates its executor


class FanOutTarget(Protocol):
    """What fan_out needs of a backend (``Upstream`` is one)."""

    @property
    def id(self) -> str: ...

    def unavailable(self) -> UpstreamError | None: ...

    def record_failure(self, error: UpstreamError) -> None: ...


B = TypeVar("B", bound=FanOutTarget)


@dataclass
class FanOut(Generic[T]):
    successes: dict[str, T] = field(default_factory=dict)
    failures: dict[str, UpstreamError] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        """Ids for ``federation:missing`` (sorted, for stable answers)."""
        return sorted(self.failures)


class FanOutPool:
    """A bounded thread pool for fan-outs with a per-backend cap on pending calls.

    Fork-safe: a process forked from one that used the pool (gunicorn's master builds the app) gets a
    fresh executor on first use; an inherited executor would believe its dead threads still work.
    """

    def __init__(self, max_workers: int = 32, max_pending_per_backend: int = 8):
        self.max_workers = max_workers
        self.max_pending_per_backend = max_pending_per_backend
        self._pid = -1
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}

    def _executor_here(self) -> ThreadPoolExecutor:
        if self._pid != os.getpid():
            with _creation_lock:
                if self._pid != os.getpid():
                    self._lock = threading.Lock()
                    self._pending = {}
                    self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="fan-out")
                    self._pid = os.getpid()
        return self._executor

    def fan_out(self, backends: Iterable[B], call: Callable[[B], T], *, deadline: float) -> FanOut[T]:
        """Run ``call(backend)`` for every backend in parallel; return what finished within ``deadline`` s.

        ``call`` should raise ``UpstreamError`` for a backend's failure (``Upstream`` methods do); any
        other exception is logged and reported as that backend's invalid response. Calls still running
        at the deadline become ``BackendTimeout`` failures (their threads finish in the background).
        """
        result: FanOut[T] = FanOut()
        started = time.monotonic()
        executor = self._executor_here()
        futures: dict[Future, str] = {}
        targets: dict[str, B] = {}
        for backend in backends:
            targets[backend.id] = backend
            refused = backend.unavailable() or self._reserve(backend.id)
            if refused is not None:
                result.failures[backend.id] = refused
                continue
            try:
                future = executor.submit(_guarded, backend, call)
            except RuntimeError:  # pool shut down (process exiting)
                self._release(backend.id)
                result.failures[backend.id] = BackendUnavailable(backend.id, "the aggregator is shutting down")
                continue
            future.add_done_callback(lambda _, backend_id=backend.id: self._release(backend_id))
            futures[future] = backend.id
        remaining = set(futures)
        while remaining:
            timeout = deadline - (time.monotonic() - started)
            if timeout <= 0:
                break
            done, remaining = wait(remaining, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                backend_id = futures[future]
                error = future.exception()
                if error is None:
                    result.successes[backend_id] = future.result()
                else:
                    result.failures[backend_id] = error
        for future in remaining:
            backend = targets[futures[future]]
            error = result.failures[backend.id] = BackendTimeout(backend.id, deadline)
            # A call that was running counts for the backend's breaker, so a hung backend is skipped after a
            # few missed deadlines; one still queued (cancelled now) says nothing about the backend.
            if not future.cancel():
                backend.record_failure(error)
        return result

    def shutdown(self) -> None:
        if self._executor is not None and self._pid == os.getpid():
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _reserve(self, backend_id: str) -> UpstreamError | None:
        with self._lock:
            pending = self._pending.get(backend_id, 0)
            if pending >= self.max_pending_per_backend:
                return BackendUnavailable(backend_id, f"{pending} earlier calls to it are still pending")
            self._pending[backend_id] = pending + 1
            return None

    def _release(self, backend_id: str) -> None:
        with self._lock:
            left = self._pending.get(backend_id, 1) - 1
            if left > 0:
                self._pending[backend_id] = left
            else:
                self._pending.pop(backend_id, None)

    def pending(self, backend_id: str) -> int:
        with self._lock:
            return self._pending.get(backend_id, 0)


def _guarded(backend: FanOutTarget, call: Callable[[FanOutTarget], T]) -> T:
    try:
        return call(backend)
    except UpstreamError:
        raise
    except Exception as exc:  # e.g. a KeyError on a backend's oddly shaped document: that backend is missing
        log.exception("fan-out call to backend '%s' failed", backend.id)
        raise BackendResponseInvalid(backend.id, f"its answer could not be used ({type(exc).__name__})") from exc


_default = FanOutPool()


def default_pool() -> FanOutPool:
    """The process's shared pool (sizes: ``configure_default_pool``)."""
    return _default


def configure_default_pool(max_workers: int, max_pending_per_backend: int) -> FanOutPool:
    """Size the shared pool (call once at start-up, e.g. from create_app, before any fan-out)."""
    global _default
    old, _default = _default, FanOutPool(max_workers, max_pending_per_backend)
    old.shutdown()
    return _default


def fan_out(backends: Iterable[B], call: Callable[[B], T], *, deadline: float,
            pool: FanOutPool | None = None) -> FanOut[T]:
    """``FanOutPool.fan_out`` on ``pool`` or the process's shared pool."""
    return (pool or _default).fan_out(backends, call, deadline=deadline)
