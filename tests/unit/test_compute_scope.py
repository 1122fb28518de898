"""The per-request Dask scope (backend/processing/compute.py) with overlapping threads: each computation
gets its own threads, deadline and meter, and nothing of it stays in Dask's process-global state."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dask
import dask.array as da
import numpy as np
import pytest
from dask.callbacks import Callback

from apicore import errors
from backend.accounting.usage import SyncUsageMeter
from backend.processing.compute import ComputeScope, computing, current_scope
from backend.processing.limits import Deadline, check_deadline

WAIT = 30  # s; only reached when something is broken


class Concurrency:
    """Records how many tasks run at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def task(self, block, pause: float = 0.02):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(pause)
        with self.lock:
            self.now -= 1
        return block


def test_each_scope_runs_on_its_own_number_of_threads():
    """Two overlapping computations with 2 and 3 threads, under a global config that says 8 and a
    concurrently entered scope: each stays at its own count."""
    recorders = {2: Concurrency(), 3: Concurrency()}
    both_started = threading.Barrier(2, timeout=WAIT)

    def run(threads: int) -> float:
        array = da.ones((60, 4), chunks=(1, 4)).map_blocks(recorders[threads].task)
        with computing(ComputeScope(threads=threads)):
            both_started.wait()
            return float(array.sum().compute())

    with dask.config.set(num_workers=8), ThreadPoolExecutor(2) as pool:
        totals = list(pool.map(run, [2, 3]))
    assert totals == [240.0, 240.0]
    assert recorders[2].peak == 2 and recorders[3].peak == 3


def test_overlapping_scopes_keep_their_own_deadline_and_meter():
    """A computation past its deadline stops; one overlapping it (no deadline) is not stopped, and each
    meter counts exactly its own tasks. The tasks of both wait for each other: they truly overlap."""
    slow_running, fast_done = threading.Event(), threading.Event()

    def slow_task(block):
        slow_running.set()
        time.sleep(0.05)
        return block

    def fast_task(block):
        assert slow_running.wait(WAIT), "the two computations did not overlap"
        return block + 1

    meters = {"slow": SyncUsageMeter(), "fast": SyncUsageMeter()}
    counted = {"slow": [], "fast": []}

    def counter(name):
        return Callback(pretask=lambda key, dsk, state: counted[name].append(key))

    def slow():
        array = da.ones((400, 2), chunks=(1, 2)).map_blocks(slow_task)  # 400 x 50 ms on 2 threads: 10 s
        with computing(ComputeScope(threads=2, deadline=Deadline(0.5), callbacks=(meters["slow"], counter("slow")))):
            with pytest.raises(errors.ProcessGraphComplexity, match="0.5 s"):
                array.sum().compute()
        return time.monotonic()

    def fast():
        array = da.zeros((20, 2), chunks=(1, 2)).map_blocks(fast_task)
        with computing(ComputeScope(threads=2, callbacks=(meters["fast"], counter("fast")))):
            result = array.compute()
        fast_done.set()
        return result

    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        slow_future, fast_future = pool.submit(slow), pool.submit(fast)
        assert np.array_equal(fast_future.result(WAIT), np.ones((20, 2)))
        stopped = slow_future.result(WAIT)
    assert stopped - started < 5  # its own deadline of 0.5 s (+ the tasks that were running), not 10 s
    assert counted["fast"] and counted["slow"] and not set(counted["fast"]) & set(counted["slow"])
    assert meters["fast"].cpu_seconds > 0 and meters["slow"].cpu_seconds >= 0.05
    assert not Callback.active  # nothing was registered globally


def test_scopes_leave_no_state_behind_for_the_next_computation_on_the_thread():
    """A thread that ran a computation past its deadline computes fine afterwards (web threads are reused)."""
    def slow(block):
        time.sleep(0.05)
        return block

    with ThreadPoolExecutor(1) as web_thread:  # one reused thread, like a gthread worker's
        def expired():
            with computing(ComputeScope(threads=2, deadline=Deadline(0.1))):
                with pytest.raises(errors.ProcessGraphComplexity):
                    da.ones((100, 2), chunks=(1, 2)).map_blocks(slow).sum().compute()

        web_thread.submit(expired).result(WAIT)
        later = web_thread.submit(lambda: float(da.ones((10, 2), chunks=(1, 2)).sum().compute())).result(WAIT)
    assert later == 20.0 and current_scope() is None
    assert dask.config.get("num_workers", None) is None


def test_a_stopped_computation_leaves_its_pool_idle():
    """A reused pool (a request slot's) is idle when the stopped computation returns: the next request's
    tasks never queue behind the previous request's."""
    pool = ThreadPoolExecutor(2)
    running = Concurrency()
    with computing(ComputeScope(threads=2, pool=pool, deadline=Deadline(0.2))):
        with pytest.raises(errors.ProcessGraphComplexity):
            da.ones((50, 2), chunks=(1, 2)).map_blocks(lambda b: running.task(b, pause=0.3)).sum().compute()
    assert running.now == 0
    pool.shutdown()


def test_the_scope_reaches_code_inside_tasks_and_nested_computes_run_in_the_task():
    """Tasks see their request's scope (e.g. for check_deadline); a compute inside a task runs in that
    task's thread (a pool of 1 thread would deadlock otherwise) with the deadline, not the meter."""
    seen = []

    def task(block):
        inner = da.ones((4,), chunks=1)
        seen.append((current_scope(), threading.get_ident(), float(inner.sum().compute())))
        return block

    meter = SyncUsageMeter()
    scope = ComputeScope(threads=1, deadline=Deadline(WAIT), callbacks=(meter,))
    with computing(scope) as active:
        da.ones((3,), chunks=1).map_blocks(task, meta=np.array((), dtype=float)).compute()
    assert [entry[0] for entry in seen] == [active] * 3 and {entry[2] for entry in seen} == {4.0}
    assert len({entry[1] for entry in seen}) == 1  # the scope's one thread ran all of it
    assert scope.callbacks == (meter,) and active.pool is not None


def test_deadline_checks_outside_dask_see_only_their_own_request():
    results = {}
    expired_set = threading.Event()

    def expired():
        with computing(ComputeScope(threads=1, deadline=Deadline(0.0))):
            time.sleep(0.01)
            expired_set.set()
            with pytest.raises(errors.ProcessGraphComplexity, match="during the item search"):
                check_deadline("the item search")
        results["expired"] = True

    def generous():
        assert expired_set.wait(WAIT)
        with computing(ComputeScope(threads=1, deadline=Deadline(WAIT))):
            check_deadline("the item search")
        check_deadline("no scope at all")  # outside any scope: nothing to check
        results["generous"] = True

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(expired), pool.submit(generous)]:
            future.result(WAIT)
    assert results == {"expired": True, "generous": True}


def test_computes_outside_any_scope_run_as_dask_would():
    with computing(ComputeScope(threads=1)):
        pass  # installs the scheduler
    assert float(da.arange(10, chunks=3).sum().compute()) == 45.0
    assert current_scope() is None


@pytest.mark.parametrize("output_format", ["GTiff", "netCDF", "Zarr", "JSON", "PNG"])
def test_writers_compute_in_the_request_scope(tmp_path, output_format):
    """Every writer's computes (rioxarray, xarray's netCDF and Zarr stores, .values) reach the scope:
    its meter counts the tasks and they run on the scope's own threads."""
    import rioxarray  # noqa: F401
    import xarray as xr

    from backend.processing.writers import write_result

    threads_seen = set()

    def tag(block):
        threads_seen.add(threading.current_thread().name)
        return block

    data = da.arange(64 * 64, dtype="float32", chunks=16 * 64).reshape(1, 64, 64).map_blocks(tag, meta=np.array((), dtype="float32"))
    cube = xr.DataArray(data, dims=("bands", "y", "x"), coords={
        "bands": ["B1"], "y": 5151000.0 - 10 * np.arange(64) - 5, "x": 679700.0 + 10 * np.arange(64) + 5})
    cube = cube.rio.write_crs("EPSG:32632")
    meter = SyncUsageMeter()
    with computing(ComputeScope(threads=2, callbacks=(meter,))):
        written = write_result(cube, output_format, {}, tmp_path)
    assert written.path.stat().st_size > 0
    assert meter.cpu_seconds > 0
    assert threads_seen and all(name.startswith("compute") for name in threads_seen), threads_seen
