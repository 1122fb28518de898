"""Batch jobs load in chunks sized to the Dask workers' memory; synchronous loads keep 2048 px chunks.

The rule and its measurements: backend/jobs/cluster.py (chunk_size_for) and
tests/benchmarks/bench_batch_memory.py (README there).
"""

from __future__ import annotations

import numpy as np
import pytest
from dask.utils import parse_bytes

from backend.jobs.cluster import MAX_CHUNK, MIN_CHUNK, chunk_size_for
from backend.processing.loading import DEFAULT_CHUNK_SIZE, load_chunk_size
from backend.processing.loading.odc_load import balanced_chunk
from tests.unit.test_loading import demo, load  # noqa: F401  (the demo fixture)

WHOLE_T1 = dict(west=675000, east=687800, south=5145000, north=5157800, crs=32632)  # 1280 x 1280 px


class FakeClient:
    def __init__(self, workers: dict | None = None, fail: bool = False):
        self.workers, self.fail = workers or {}, fail

    def scheduler_info(self, n_workers: int = -1) -> dict:
        if self.fail:
            raise OSError("scheduler gone")
        return {"workers": self.workers}


def cluster(*specs: tuple[str, int]) -> FakeClient:
    return FakeClient({f"tcp://w{i}": {"memory_limit": parse_bytes(limit) if limit else 0, "nthreads": threads}
                       for i, (limit, threads) in enumerate(specs)})


@pytest.mark.parametrize("workers, expected", [
    ([("500MB", 1)], 896),
    ([("1GiB", 1)], 1280),
    ([("2GiB", 1)], 1920),  # the default dask_memory_limit
    ([("8GiB", 1)], MAX_CHUNK),
    ([("2GiB", 2)], 1280),  # per thread: 1 GiB
    ([("8GiB", 1), ("500MB", 1)], 896),  # the smallest worker decides
    ([("100MB", 1)], 384),
    ([("20MB", 1)], MIN_CHUNK),
    ([(None, 1)], MAX_CHUNK),  # no memory limit
    ([], MAX_CHUNK),  # no workers (yet)
])
def test_chunk_target_from_memory_per_thread(workers, expected):
    assert chunk_size_for(cluster(*workers)) == expected


def test_chunk_target_when_the_scheduler_does_not_answer():
    assert chunk_size_for(FakeClient(fail=True)) == MAX_CHUNK


@pytest.mark.parametrize("length, target, expected", [
    (2237, 1024, 1119),  # not 1024 + 1024 + 189
    (7072, 896, 1011),
    (3873, 896, 969),
    (1280, 1024, 1280),  # up to 1.25 x the target in one chunk
    (1281, 1024, 641),
    (100, 2048, 100),
])
def test_balanced_chunks(length, target, expected):
    chunk = balanced_chunk(length, target)
    assert chunk == expected and chunk <= 1.25 * target
    parts = -(-length // chunk)
    assert length - (parts - 1) * chunk > chunk - parts  # the last chunk is not thin


def test_loads_use_the_context_target_and_sync_keeps_the_default(demo):  # noqa: F811
    plain = load(demo, WHOLE_T1, ["2022-06-02", "2022-06-03"], ["B04"])
    assert plain.chunks[2:] == ((1280,), (1280,)) and DEFAULT_CHUNK_SIZE >= 1280  # default: 2048 px chunks
    with load_chunk_size(512):
        batch = load(demo, WHOLE_T1, ["2022-06-02", "2022-06-03"], ["B04"])
        explicit = load(demo, WHOLE_T1, ["2022-06-02", "2022-06-03"], ["B04"], chunk_size=1000)
    assert batch.chunks[2:] == ((640, 640), (640, 640))  # 1280 px in chunks of at most 1.25 x 512
    assert explicit.chunks[2:] == ((1000, 280), (1000, 280))  # an explicit size wins over the context
    again = load(demo, WHOLE_T1, ["2022-06-02", "2022-06-03"], ["B04"])
    assert again.chunks == plain.chunks  # the context ended
    np.testing.assert_array_equal(batch.values, plain.values)
