"""StaleWhileRevalidateCache: fresh hits, stale served while one background refresh runs, bounded staleness."""

from __future__ import annotations

import threading

import pytest

from aggregator.federation.caching import StaleWhileRevalidateCache


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Deferred:
    """Collects background refreshes so the test runs them when it wants (no sleeping)."""

    def __init__(self):
        self.jobs = []

    def __call__(self, work) -> None:
        self.jobs.append(work)

    def run_all(self) -> None:
        jobs, self.jobs = self.jobs, []
        for work in jobs:
            work()


class Source:
    def __init__(self):
        self.calls = 0
        self.fail = False

    def __call__(self) -> str:
        self.calls += 1
        if self.fail:
            raise RuntimeError("backend down")
        return f"v{self.calls}"


@pytest.fixture
def setup():
    clock, spawn, source = Clock(), Deferred(), Source()
    cache = StaleWhileRevalidateCache(10, max_stale=100, retry_after=5, clock=clock, spawn=spawn)
    return cache, clock, spawn, source


def test_fresh_values_are_served_without_computing(setup):
    cache, clock, spawn, source = setup
    assert cache.get_or_call("k", source) == "v1"
    clock.now += 9
    assert cache.get_or_call("k", source) == "v1"
    assert source.calls == 1 and spawn.jobs == []


def test_stale_value_is_served_and_refreshed_once(setup):
    cache, clock, spawn, source = setup
    cache.get_or_call("k", source)
    clock.now += 11
    assert [cache.get_or_call("k", source) for _ in range(5)] == ["v1"] * 5  # no reader waits
    assert len(spawn.jobs) == 1 and source.calls == 1  # one refresh for five stale reads
    spawn.run_all()
    assert source.calls == 2
    assert cache.get_or_call("k", source) == "v2" and cache.age("k") == 0
    assert spawn.jobs == []


def test_failed_refresh_keeps_the_stale_value_retries_later_and_gives_up_after_max_stale(setup):
    cache, clock, spawn, source = setup
    cache.get_or_call("k", source)
    source.fail = True
    clock.now += 11
    assert cache.get_or_call("k", source) == "v1"
    spawn.run_all()  # fails
    assert source.calls == 2
    assert cache.get_or_call("k", source) == "v1" and spawn.jobs == []  # no retry before retry_after
    clock.now += 5
    assert cache.get_or_call("k", source) == "v1" and len(spawn.jobs) == 1
    spawn.run_all()
    clock.now += 100  # now older than ttl + max_stale: no longer served
    with pytest.raises(RuntimeError, match="backend down"):
        cache.get_or_call("k", source)
    source.fail = False
    assert cache.get_or_call("k", source) == "v5"


def test_concurrent_misses_compute_once():
    calls = []
    gate = threading.Event()

    def slow() -> str:
        calls.append(1)
        gate.wait(5)
        return "value"

    cache = StaleWhileRevalidateCache(10)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_call("k", slow))) for _ in range(6)]
    for thread in threads:
        thread.start()
    while not calls:
        threading.Event().wait(0.01)
    gate.set()
    for thread in threads:
        thread.join()
    assert results == ["value"] * 6 and len(calls) == 1


def test_real_background_refresh_runs_once():
    clock = Clock()
    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    cache = StaleWhileRevalidateCache(10, clock=clock)
    assert cache.get_or_call("k", compute) == 1
    clock.now += 20
    assert [cache.get_or_call("k", compute) for _ in range(3)] in ([1, 1, 1], [1, 1, 2], [1, 2, 2])
    for _ in range(500):  # the refresh thread stores its value soon; poll, bounded
        if cache.get_or_call("k", compute) == 2:
            break
        threading.Event().wait(0.01)
    assert cache.get_or_call("k", compute) == 2 and len(calls) == 2


def test_errors_of_a_miss_are_not_cached(setup):
    cache, _, _, source = setup
    source.fail = True
    with pytest.raises(RuntimeError):
        cache.get_or_call("k", source)
    source.fail = False
    assert cache.get_or_call("k", source) == "v2"


def test_invalidate_and_clear(setup):
    cache, _, _, source = setup
    cache.get_or_call("a", source), cache.get_or_call("b", source)
    cache.invalidate("a")
    assert cache.age("a") is None and cache.age("b") == 0
    cache.clear()
    assert cache.get_or_call("b", source) == "v3"
