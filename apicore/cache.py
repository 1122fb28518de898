"""Caches behind one interface: ``get_or_call(key, compute)``; stores are swappable (TTL in memory now)."""

from __future__ import annotations

import threading
from typing import Any, Callable, Hashable, Protocol

from cachetools import TTLCache


class Cache(Protocol):
    def get_or_call(self, key: Hashable, compute: Callable[[], Any]) -> Any: ...

    def clear(self) -> None: ...


class TtlMemoryCache:
    """Thread-safe TTL cache; concurrent misses of one key compute once."""

    def __init__(self, ttl_seconds: float, maxsize: int = 1024):
        self._store: TTLCache | None = TTLCache(maxsize, ttl_seconds) if ttl_seconds > 0 else None
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def get_or_call(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if self._store is None:
            return compute()
        with self._lock:
            if key in self._store:
                return self._store[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._store:
                    return self._store[key]
            value = compute()
            with self._lock:
                self._store[key] = value
                self._key_locks.pop(key, None)
            return value

    def clear(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.clear()
