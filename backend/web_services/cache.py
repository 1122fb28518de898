"""Rendered tiles kept in memory, bounded by bytes, least recently used evicted first. Keyed by service id,
service version and z/x/y: a PATCH bumps the version (in the database, so every worker process sees it),
after which the old entries are never hit again and age out; ``drop`` frees them at once in this process."""

from __future__ import annotations

import threading
from collections import OrderedDict

Key = tuple[str, int, int, int, int]  # service id, version, z, x, y


class TileCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Key, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # web workers are threads

    def get(self, key: Key) -> bytes | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Key, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._entries[key] = value
            self._size += len(value)
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted)

    def drop(self, service_id: str) -> None:
        """Forget every tile of a service (it was changed or deleted)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == service_id]:
                self._size -= len(self._entries.pop(key))
