from __future__ import annotations

import threading
import time

from apicore.cache import TtlMemoryCache


def test_concurrent_misses_compute_once():
    cache, calls = TtlMemoryCache(60), []

    def compute():
        calls.append(1)
        time.sleep(0.05)
        return 42

    threads = [threading.Thread(target=cache.get_or_call, args=("k", compute)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.get_or_call("k", compute) == 42


def test_expiry_and_zero_ttl():
    cache = TtlMemoryCache(0.05)
    assert cache.get_or_call("k", lambda: 1) == 1
    assert cache.get_or_call("k", lambda: 2) == 1
    time.sleep(0.06)
    assert cache.get_or_call("k", lambda: 3) == 3
    uncached = TtlMemoryCache(0)
    assert uncached.get_or_call("k", lambda: 1) == 1 and uncached.get_or_call("k", lambda: 2) == 2
