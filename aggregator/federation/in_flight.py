"""The load figure routing ranks backends by: requests this process is proxying to each backend right now
(``POST /result`` and ``POST /validation``), counted from when the call starts until its answer has been
streamed to the client or abandoned. Per process (each gunicorn worker counts its own): a cheap local
signal, not a cluster-wide one."""

from __future__ import annotations

import threading
from typing import Callable


class InFlight:
    """Thread-safe counters; ``begin(backend)`` returns the one-shot ``end`` to call when done."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def begin(self, backend_id: str) -> Callable[[], None]:
        with self._lock:
            self._counts[backend_id] = self._counts.get(backend_id, 0) + 1
        open_calls = [True]  # emptied by the first end()

        def end() -> None:
            with self._lock:
                if not open_calls:
                    return
                open_calls.pop()
                left = self._counts.get(backend_id, 1) - 1
                if left > 0:
                    self._counts[backend_id] = left
                else:
                    self._counts.pop(backend_id, None)

        return end

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {backend_id: float(count) for backend_id, count in self._counts.items()}
