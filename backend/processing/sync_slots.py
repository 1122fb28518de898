"""How many synchronous computations one worker process runs at once.

A web worker has ``sync_max_concurrent`` slots, each with a thread pool of ``sync_threads`` threads
of its own (kept between requests, so GDAL's and odc-stac's per-thread set-up is paid once). A request
takes a free slot for its computation; when none is free within ``sync_queue_timeout`` seconds it is
refused with 503 ``InfrastructureBusy`` and a ``Retry-After`` header, before anything is held or
charged. So the CPU of a worker is shared by a bounded number of requests, each with its own threads.

Light on purpose (stdlib only): built with the services, also in processes that never compute.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from apicore import errors


class SyncSlot:
    def __init__(self, threads: int):
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The slot's threads, started on first use in this process (a pool does not survive a fork)."""
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="sync-compute")
                self._pid = os.getpid()
            return self._pool


class SyncSlots:
    def __init__(self, count: int, threads: int, wait: float):
        self.count = count
        self.wait = wait
        self._free: queue.LifoQueue[SyncSlot] = queue.LifoQueue()  # LIFO: the warmest threads first
        for _ in range(count):
            self._free.put(SyncSlot(threads))

    @property
    def retry_after(self) -> int:
        """Seconds a refused client is asked to wait (the ``Retry-After`` header)."""
        return max(1, math.ceil(self.wait))

    @contextmanager
    def take(self) -> Iterator[SyncSlot]:
        try:
            slot = self._free.get(timeout=self.wait)
        except queue.Empty:
            raise busy(self.count, self.wait, self.retry_after) from None
        try:
            yield slot
        finally:
            self._free.put(slot)


def busy(count: int, wait: float, retry_after: int) -> errors.OpenEOError:
    error = errors.InfrastructureBusy(
        f"This server is running its maximum of {count} synchronous computations per worker and none "
        f"finished within {wait:g} s. Retry in {retry_after} s (Retry-After), or run the process graph "
        "as a batch job (POST /jobs), which waits in a queue instead.")
    error.retry_after = retry_after
    return error
