"""Batch jobs on Dask distributed: connecting to the cluster, and streaming a result from it.

The heavy work (reading, band math, reductions) runs on the cluster; the result file is written by
the runner, block by block, as the blocks arrive. ``ClusterStream.materialize`` submits all output blocks
of a lazy cube as ONE graph (``client.compute``: the scheduler orders the work for memory), and returns
a cube of the same shape whose blocks are fetched from those futures; the normal writers then run on it
with the runner's local threads. So:
- the files are written where the runner is (local disk or fsspec storage), also with a remote cluster;
- memory stays bounded: each block's future is released as soon as it is fetched, workers spill and
  pause under their memory limit while the runner catches up;
- progress is real: the share of output blocks computed, which only grows;
- cancelling cancels the futures: the cluster stops working on the job at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from typing import Any, Callable

import dask.array as da
import numpy as np
import xarray as xr

log = logging.getLogger(__name__)
_names = itertools.count()


class JobCanceled(Exception):
    """The job was stopped (by its user, its time limit or the runner) while it computed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Cluster:
    """The configured scheduler, or a LocalCluster started for this runner (the embedded default).

    Every job gets a Client of its own: the scheduler counts who wants a result per client, so
    cancelling one job never cancels the same computation wanted by another job (Dask keys are
    deterministic: two identical graphs share their keys)."""

    def __init__(self, settings):
        from distributed import LocalCluster

        self._local = None
        if settings.dask_scheduler:
            self.address = settings.dask_scheduler
        else:
            self._local = LocalCluster(n_workers=settings.dask_workers, processes=True, dashboard_address=None,
                                       threads_per_worker=settings.dask_threads_per_worker,
                                       memory_limit=settings.dask_memory_limit)
            self.address = self._local.scheduler_address

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, set_as_default=False, timeout="30s")

    def close(self) -> None:
        if self._local is not None:
            self._local.close()


# Chunk size of the cubes a batch job loads, from the memory of one Dask thread (worker memory limit /
# threads). Measured with 500 MB workers of 1 thread (tests/benchmarks/bench_batch_memory.py): a worker
# holds ~230 MiB of its own; computing a time mean of NDVI over chunks of 1024² px raised its peak by ~125
# MiB, 1280² ~170 MiB, 1536² ~190 MiB, 2048² ~230 MiB (dask's mean concatenates 4 partial sums and counts).
# The largest chunk (loads balance their chunks up to 1.25 x the target, odc_load.balanced_chunk) may
# take a quarter of a thread's memory at ~90 bytes per pixel, so that the worker itself, results waiting
# for the runner and transfers fit beside it: 500 MB → 896 px (chunks ≤ 1120), 1 GiB → 1280,
# 2 GiB → 1920, ≥ 2.2 GiB → 2048.
MIN_CHUNK, MAX_CHUNK, CHUNK_STEP = 256, 2048, 128  # px
BYTES_PER_CHUNK_PIXEL = 90
CHUNK_MEMORY_SHARE = 0.25


def chunk_size_for(client: Any) -> int:
    """Load chunk target (px) for a job on this cluster: from the smallest memory per thread of its workers."""
    try:
        workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
        per_thread = [w["memory_limit"] / max(1, w.get("nthreads", 1)) for w in workers if w.get("memory_limit")]
    except Exception:  # noqa: BLE001 - no answer: the default size
        log.warning("could not read the workers' memory limits; loading with %s px chunks", MAX_CHUNK, exc_info=True)
        return MAX_CHUNK
    if not per_thread:  # no workers yet, or no memory limits
        return MAX_CHUNK
    largest = (min(per_thread) * CHUNK_MEMORY_SHARE / BYTES_PER_CHUNK_PIXEL) ** 0.5
    return max(MIN_CHUNK, min(MAX_CHUNK, int(largest / 1.25) // CHUNK_STEP * CHUNK_STEP))


def _count_tasks():
    """A function for ``run_on_scheduler``, made here so that it is pickled by value: the scheduler
    needs distributed only, not this package. Counts the tasks behind everything the job's client
    wants, and those of them still waiting or running. Finished tasks whose results were fetched are
    forgotten by the scheduler, hence ``ClusterStream`` keeps the largest total it has seen. Also returns
    the run time of the task groups involved and the bytes of results held in memory (usage)."""

    def count(dask_scheduler, client_id):
        state = dask_scheduler.clients.get(client_id)
        if state is None:
            return 0, 0, {}, 0
        seen, pending, nbytes, groups, stack = set(), 0, 0, {}, list(state.wants_what)
        while stack:
            task = stack.pop()
            if task.key in seen:
                continue
            seen.add(task.key)
            if task.state in ("waiting", "processing", "queued", "no-worker"):
                pending += 1
            elif task.state == "memory":
                nbytes += max(task.nbytes, 0)
            if task.group is not None:
                groups[task.group.name] = task.group.duration
            stack.extend(task.dependencies)
        return len(seen), pending, groups, nbytes

    return count


class _Pending:
    """Holds a future inside a local task without Dask treating it as a dependency of its own graph."""

    __slots__ = ("future",)

    def __init__(self, future: Any):
        self.future = future


class ClusterStream:
    """One job's computations on the cluster: materialize results, count progress, cancel."""

    def __init__(self, connect: Callable[[], Any]):
        self._connect = connect
        self._client: Any = None
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self.blocks_total = 0
        self.blocks_done = 0
        self.canceled: str | None = None
        self._tasks_seen = 0  # the most tasks the scheduler held for this job at once
        self._tasks_fraction = 0.0
        self._group_seconds: dict[str, float] = {}  # task group -> seconds its finished tasks ran
        self.memory_gb_seconds = 0.0
        self._last_poll: float | None = None

    @property
    def cpu_seconds(self) -> float:
        """Thread-seconds of the job's finished tasks on the cluster (task groups' durations)."""
        with self._lock:
            return sum(self._group_seconds.values())

    @property
    def fraction(self) -> float:
        """Share of the job's cluster work done (0..1), never decreasing: 80 % weight on the tasks the
        scheduler finished, 20 % on the result blocks the writer has received."""
        with self._lock:
            blocks = self.blocks_done / self.blocks_total if self.blocks_total else 0.0
            if not self._tasks_seen:
                return blocks
            return 0.8 * self._tasks_fraction + 0.2 * blocks

    def poll_tasks(self) -> None:
        """Ask the scheduler how many of this job's tasks are still to run (one round trip)."""
        client = self._client
        if client is None or self.canceled:
            return
        total, pending, group_seconds, nbytes = client.run_on_scheduler(_count_tasks(), client_id=client.id)
        now = time.monotonic()
        with self._lock:
            for name, seconds in group_seconds.items():
                self._group_seconds[name] = max(self._group_seconds.get(name, 0.0), seconds)
            if self._last_poll is not None:  # memory held × time since the last look
                self.memory_gb_seconds += nbytes / 1e9 * (now - self._last_poll)
            self._last_poll = now
            self._tasks_seen = max(self._tasks_seen, total)
            if self._tasks_seen:
                done = (self._tasks_seen - pending) / self._tasks_seen
                self._tasks_fraction = max(self._tasks_fraction, done)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def materialize(self, value: Any) -> Any:
        """The value with its lazy parts computed on the cluster (raster cubes: streamed per block)."""
        if isinstance(value, xr.DataArray) and isinstance(value.data, da.Array):
            return value.copy(data=self._stream_array(value.data))
        if hasattr(value, "__dask_graph__") and value.__dask_graph__() is not None:
            future = self.client.compute(value)
            pending = self._track([future])[0]
            return self._fetch(pending)
        return value

    def _stream_array(self, array: da.Array) -> da.Array:
        # Output keys of this job's own: identical jobs (same graph, same keys) computing at once must not share
        # the keys they fetch, or stopping one (its client cancels them) cancelled the others' futures too
        # (FutureCancelledError in a job nobody stopped; seen with 20 identical jobs, tests/reliability).
        # The work below them is still shared: only this identity layer is per job (np.asarray: the workers of
        # an existing cluster have numpy, not this package).
        array = array.map_blocks(np.asarray, name=f"job-output-{uuid.uuid4().hex}", dtype=array.dtype,
                                 meta=array._meta)
        blocks = array.to_delayed()
        futures = self.client.compute(blocks.ravel().tolist())
        pending = self._track(futures)
        name = f"cluster-block-{next(_names)}"
        graph = {(name, *index): (self._fetch, holder) for index, holder in zip(np.ndindex(blocks.shape), pending)}
        return da.Array(graph, name, chunks=array.chunks, dtype=array.dtype, meta=array._meta)

    def _track(self, futures: list) -> list[_Pending]:
        holders = [_Pending(future) for future in futures]
        with self._lock:
            if self.canceled:
                self.client.cancel(futures)
                raise JobCanceled(self.canceled)
            self._pending.extend(holders)
            self.blocks_total += len(holders)
        return holders

    def _fetch(self, holder: _Pending) -> Any:
        future = holder.future
        if future is None or self.canceled:
            raise JobCanceled(self.canceled or "canceled")
        try:
            result = future.result()
        except Exception:
            if self.canceled:
                raise JobCanceled(self.canceled) from None
            raise
        with self._lock:
            last = self.blocks_done + 1 == self.blocks_total
        if last:  # every task has run and is still known to the scheduler: read the full usage now
            try:
                self.poll_tasks()
            except Exception:  # noqa: BLE001 - usage then comes from the periodic polls only
                log.warning("final usage poll failed", exc_info=True)
        holder.future = None  # the cluster may now forget the block
        with self._lock:
            self.blocks_done += 1
        return result

    def cancel(self, reason: str) -> None:
        """Stop the job's cluster work; fetches still waiting raise JobCanceled."""
        with self._lock:
            if self.canceled:
                return
            self.canceled = reason
            futures = [holder.future for holder in self._pending if holder.future is not None]
        if futures and self._client is not None:
            try:
                self._client.cancel(futures)
            except Exception:  # noqa: BLE001 - the cluster may be gone already; nothing left to stop then
                log.warning("cancelling %d futures failed", len(futures), exc_info=True)

    def close(self) -> None:
        """Drop what is left (e.g. after an error in the writer) and disconnect: the scheduler then
        forgets everything only this job wanted."""
        with self._lock:
            for holder in self._pending:
                holder.future = None
            self._pending.clear()
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - the cluster may be gone; nothing left to release then
                log.warning("closing a job's Dask client failed", exc_info=True)
