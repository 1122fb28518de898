"""Usage of a synchronous request, measured while Dask's threaded scheduler runs it.

CPU seconds: thread-seconds of the request's Dask tasks (each task occupies one thread while it runs).
Memory GB-seconds: each task result's size × the task's duration — memory held over time, the same
quantity the batch runner reads from the cluster (bytes of the job's results in memory × time).
Input values are counted by the load processes.

Dask's local scheduler calls pre/post-task callbacks in the thread that called compute, and the
callbacks registered with ``with`` are global: a meter therefore only counts the computations of the
thread that created it (one request), not those of concurrent requests.
"""

from __future__ import annotations

import threading
import time

from dask.callbacks import Callback as DaskCallback


class SyncUsageMeter(DaskCallback):
    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()
        self._started: dict[object, float] = {}
        self.cpu_seconds = 0.0
        self.memory_gb_seconds = 0.0

    def _pretask(self, key, dsk, state):
        if threading.get_ident() == self.thread:
            self._started[key] = time.perf_counter()

    def _posttask(self, key, result, dsk, state, worker_id):
        begun = self._started.pop(key, None) if threading.get_ident() == self.thread else None
        if begun is None:
            return
        seconds = time.perf_counter() - begun
        self.cpu_seconds += seconds
        self.memory_gb_seconds += (getattr(result, "nbytes", 0) or 0) / 1e9 * seconds
