"""Stale-while-revalidate cache behind apicore.cache's ``get_or_call(key, compute)`` interface.

For ``ttl`` seconds after it was computed a value is fresh and served as is. After that it is stale:
it is still served at once, and one background refresh starts (one per key, however many readers).
A successful refresh replaces it; a failed one keeps the stale value and is retried after
``retry_after`` seconds. A value older than ``ttl + max_stale`` is no longer served: the next reader
computes it (and sees the error if that fails), so a dead backend's data does not live forever.

Only a key with no usable value makes its reader wait; concurrent readers of such a key compute once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from cachetools import LRUCache

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    value: Any
    computed_at: float
    refreshing: bool = False
    retry_at: float = 0.0  # after a failed refresh: no new attempt before this
    last_error: str | None = None


def _spawn_daemon(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="cache-refresh", daemon=True).start()


class StaleWhileRevalidateCache:
    """Thread-safe; ``clock`` and ``spawn`` (runs a refresh in the background) are injectable for tests."""

    def __init__(self, ttl: float, *, max_stale: float = 600.0, retry_after: float = 5.0, maxsize: int = 1024,
                 clock: Callable[[], float] = time.monotonic,
                 spawn: Callable[[Callable[[], None]], None] = _spawn_daemon):
        self.ttl = ttl
        self.max_stale = max_stale
        self.retry_after = retry_after
        self._clock = clock
        self._spawn = spawn
        self._entries: LRUCache = LRUCache(maxsize)
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def get_or_call(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._usable(entry, now):
                if now - entry.computed_at >= self.ttl and not entry.refreshing and now >= entry.retry_at:
                    entry.refreshing = True
                    try:
                        self._spawn(lambda: self._refresh(key, entry, compute))
                    except RuntimeError:  # no thread to be had (interpreter exiting): serve stale
                        entry.refreshing = False
                return entry.value
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # a miss: the first reader computes, the others wait for its value
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and self._usable(entry, self._clock()):
                    return entry.value
            try:
                value = compute()
                with self._lock:
                    self._entries[key] = _Entry(value, self._clock())
                return value
            finally:
                with self._lock:
                    self._key_locks.pop(key, None)

    def _usable(self, entry: _Entry, now: float) -> bool:
        return now - entry.computed_at < self.ttl + self.max_stale

    def _refresh(self, key: Hashable, entry: _Entry, compute: Callable[[], Any]) -> None:
        try:
            value = compute()
        except Exception as exc:
            log.warning("refreshing cached %r failed, serving the stale value: %s", key, exc)
            with self._lock:
                entry.refreshing = False
                entry.retry_at = self._clock() + self.retry_after
                entry.last_error = str(exc)
            return
        with self._lock:
            if self._entries.get(key) is entry:  # not replaced or cleared meanwhile
                self._entries[key] = _Entry(value, self._clock())
            else:
                entry.refreshing = False

    def age(self, key: Hashable) -> float | None:
        """Seconds since the cached value of ``key`` was computed; None if there is none."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else self._clock() - entry.computed_at

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
