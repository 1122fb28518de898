"""Usage of a synchronous request, measured while Dask's threaded scheduler runs it.

CPU seconds: thread-seconds of the request's Dask tasks (each task occupies one thread while it runs).
Memory GB-seconds: each task result's size × the task's duration — memory held over time, the same
quantity the batch runner reads from the cluster (bytes of the job's results in memory × time).
Input values are counted by the load processes.

The meter is handed to Dask per computation (``backend.processing.compute.ComputeScope``), never
registered globally, so it counts exactly its own request's tasks also when requests overlap.
"""

from __future__ import annotations

import threading
import time

from dask.callbacks import Callback as DaskCallback


class SyncUsageMeter(DaskCallback):
    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()  # a request may compute from several threads
        self._started: dict[tuple[int, object], float] = {}
        self.cpu_seconds = 0.0
        self.memory_gb_seconds = 0.0

    def _pretask(self, key, dsk, state):
        with self._lock:
            self._started[(id(state), key)] = time.perf_counter()

    def _posttask(self, key, result, dsk, state, worker_id):
        with self._lock:
            begun = self._started.pop((id(state), key), None)
            if begun is None:
                return
            seconds = time.perf_counter() - begun
            self.cpu_seconds += seconds
            self.memory_gb_seconds += (getattr(result, "nbytes", 0) or 0) / 1e9 * seconds
