"""The per-process tile cache: bounded by bytes, least recently used out first, a service's tiles dropped
together, safe under threads; and the PNG encoder's output as GDAL reads it."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import rasterio.errors
from rasterio.io import MemoryFile

from backend.web_services.cache import TileCache
from backend.web_services.tiles import encode_png, tile_bounds, to_rgba


def test_least_recently_used_is_evicted_within_the_byte_bound():
    cache = TileCache(max_bytes=10)
    cache.put(("a", 1, 0, 0, 0), b"1234")
    cache.put(("b", 1, 0, 0, 0), b"1234")
    assert cache.get(("a", 1, 0, 0, 0)) == b"1234"  # a is now the most recent
    cache.put(("c", 1, 0, 0, 0), b"1234")  # 12 bytes > 10: b goes
    assert cache.get(("b", 1, 0, 0, 0)) is None
    assert cache.get(("a", 1, 0, 0, 0)) == b"1234" and cache.get(("c", 1, 0, 0, 0)) == b"1234"
    cache.put(("d", 1, 0, 0, 0), b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get(("d", 1, 0, 0, 0)) is None


def test_drop_forgets_every_version_of_one_service():
    cache = TileCache(max_bytes=100)
    cache.put(("a", 1, 0, 0, 0), b"1")
    cache.put(("a", 2, 1, 0, 0), b"2")
    cache.put(("b", 1, 0, 0, 0), b"3")
    cache.drop("a")
    assert cache.get(("a", 1, 0, 0, 0)) is None and cache.get(("a", 2, 1, 0, 0)) is None
    assert cache.get(("b", 1, 0, 0, 0)) == b"3"


def test_threads_keep_the_byte_count_consistent():
    cache = TileCache(max_bytes=1000)

    def work(n):
        for i in range(500):
            cache.put((f"s{n}", 1, 0, i % 50, 0), b"x" * (i % 7 + 1))
            cache.get((f"s{(n + 1) % 4}", 1, 0, i % 50, 0))
            if i % 97 == 0:
                cache.drop(f"s{n}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache._size == sum(len(v) for v in cache._entries.values()) <= 1000


def test_png_round_trip_and_tile_geometry():
    values = np.array([[[0.0, 0.5], [1.0, np.nan]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with MemoryFile(encode_png(to_rgba(values, (0.0, 1.0)))) as memory, memory.open() as image:
            decoded = image.read()
    assert decoded[:, 0, :].tolist() == [[0, 128], [0, 128], [0, 128], [255, 255]]
    assert decoded[:, 1, :].tolist() == [[255, 0], [255, 0], [255, 0], [255, 0]]
    (west, south, east, north), res = tile_bounds(0, 0, 0)
    assert (west, north) == (-east, -south) and abs(east - 20037508.342789244) < 1e-6 and abs(res * 256 - 2 * east) < 1e-6
    (west, south, east, north), _ = tile_bounds(1, 1, 0)  # north-east quarter
    assert west == 0 and south == 0
