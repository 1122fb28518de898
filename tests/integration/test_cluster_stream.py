"""Identical jobs on one Dask cluster: stopping one never cancels another (issue 13, found by the kill suite:
with 20 identical jobs, the runner's shutdown cancelled one job's futures and other jobs failed with
``FutureCancelledError`` as an internal error)."""

from __future__ import annotations

import threading
import time

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

from backend.jobs.cluster import ClusterStream, JobCanceled


def slow_block(block):
    time.sleep(0.3)
    return block + 1


def identical_graph() -> da.Array:
    return da.zeros((4, 4), chunks=2).map_blocks(slow_block)  # the same keys every time


@pytest.fixture(scope="module")
def address():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def stream(address: str) -> ClusterStream:
    return ClusterStream(lambda: Client(address, set_as_default=False, timeout="30s"))


def test_identical_jobs_fetch_keys_of_their_own(address):
    first, second = stream(address), stream(address)
    try:
        first._stream_array(identical_graph())
        second._stream_array(identical_graph())
        keys = [{holder.future.key for holder in s._pending} for s in (first, second)]
        assert keys[0] and keys[1] and not keys[0] & keys[1]
    finally:
        first.close(), second.close()


def test_stopping_one_of_two_identical_jobs_leaves_the_other_running(address):
    stopped, kept = stream(address), stream(address)
    try:
        doomed = stopped._stream_array(identical_graph())
        wanted = kept._stream_array(identical_graph())
        outcome = {}

        def compute_stopped():
            try:
                doomed.compute(scheduler="threads")
            except JobCanceled as exc:
                outcome["stopped"] = exc.reason

        thread = threading.Thread(target=compute_stopped)
        thread.start()
        stopped.cancel("stopped by its user")
        thread.join(30)
        assert np.array_equal(wanted.compute(scheduler="threads"), np.ones((4, 4)))
        assert outcome == {"stopped": "stopped by its user"}
    finally:
        stopped.close(), kept.close()
