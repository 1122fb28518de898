"""backend.processing.fetching.ranges: byte ranges for GDAL's pixel reads, against a real local HTTP server."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backend.processing.fetching.policy import Target
from backend.processing.fetching.ranges import BlockCache, ReadRefused, read_range

DATA = bytes(range(256)) * 40  # 10,240 bytes


class Handler(BaseHTTPRequestHandler):
    hits: list[tuple[str, str]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.hits.append((self.path, self.headers.get("Range", "")))
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        start, end = (int(match[1]), min(int(match[2]), len(DATA) - 1)) if match else (0, len(DATA) - 1)
        if self.path == "/file":
            self._send(206, DATA[start:end + 1], {"Content-Range": f"bytes {start}-{end}/{len(DATA)}"})
        elif self.path == "/no-ranges":
            self._send(200, DATA)
        elif self.path == "/wrong-range":
            self._send(206, DATA[:10], {"Content-Range": f"bytes 0-9/{len(DATA)}"})
        elif self.path == "/moved":
            self._send(302, b"", {"Location": "/file"})
        elif self.path == "/elsewhere":
            self._send(302, b"", {"Location": f"http://127.0.0.2:{self.server.server_port}/file"})
        elif self.path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        else:
            self._send(404, b"missing")

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def port():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_port
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def clear_hits():
    Handler.hits.clear()


def target(port: int, path: str, host: str = "files.test") -> Target:
    """``host`` is a name nobody resolves: the reads must use the checked address only."""
    return Target(f"http://{host}:{port}{path}", "http", host, port, path, ("127.0.0.1",))


def test_ranges_come_from_the_checked_address_with_the_host_header(port):
    data, size, answered = read_range(target(port, "/file"), 100, 199, timeout=5)
    assert (data, size, answered.path) == (DATA[100:200], len(DATA), "/file")
    assert Handler.hits == [("/file", "bytes=100-199")]


def test_a_server_that_ignores_ranges_is_cut_to_the_range(port):
    data, size, _ = read_range(target(port, "/no-ranges"), 10, 19, timeout=5)
    assert (data, size) == (DATA[10:20], len(DATA))


def test_a_wrong_content_range_is_refused(port):
    with pytest.raises(ReadRefused, match="Content-Range"):
        read_range(target(port, "/wrong-range"), 100, 199, timeout=5)


def test_same_host_redirects_are_followed_to_the_same_address(port):
    data, _, answered = read_range(target(port, "/moved"), 0, 9, timeout=5)
    assert data == DATA[:10] and answered.url == f"http://files.test:{port}/file"
    assert [path for path, _ in Handler.hits] == ["/moved", "/file"]


def test_redirects_to_another_host_and_loops_are_refused(port):
    with pytest.raises(ReadRefused, match=r"redirects to another host \(127.0.0.2\)"):
        read_range(target(port, "/elsewhere"), 0, 9, timeout=5)
    with pytest.raises(ReadRefused, match="redirects more than"):
        read_range(target(port, "/loop"), 0, 9, timeout=5)
    assert all(path != "/file" for path, _ in Handler.hits)


def test_http_errors_are_refused_with_the_status(port):
    with pytest.raises(ReadRefused, match="answered HTTP 404: missing"):
        read_range(target(port, "/nothing"), 0, 9, timeout=5)


def test_block_cache_reads_each_block_once(port):
    cache = BlockCache(timeout=5, block=1024)
    pinned = target(port, "/moved")
    assert cache.size(pinned) == len(DATA)
    assert cache.read(pinned, 0, 100) == DATA[:100]
    assert cache.read(pinned, 1000, 3000) == DATA[1000:4000]
    assert cache.read(pinned, 500, 3000) == DATA[500:3500]
    assert cache.read(pinned, 10_000, 1000) == DATA[10_000:]
    assert cache.read(pinned, len(DATA), 10) == b""
    # block 0 (with the size), blocks 1-3, block 9; the redirect only once (the answering URL is kept)
    assert [r for _, r in Handler.hits] == ["bytes=0-1023", "bytes=0-1023", "bytes=1024-4095", "bytes=9216-10239"]
    assert cache.requests == 3


def test_block_cache_evicts_beyond_its_capacity(port):
    cache = BlockCache(timeout=5, block=1024, capacity=2048)
    pinned = target(port, "/file")
    assert cache.read(pinned, 0, len(DATA)) == DATA
    assert cache.read(pinned, 0, 10) == DATA[:10]
    assert cache.read(replace(pinned), 5000, 10) == DATA[5000:5010]


def test_guarded_driver_refuses_a_href_it_was_not_given(port):
    """Fail closed: a pixel read of a URL without a checked target is refused, nothing is requested."""
    from odc.loader.types import RasterSource

    from apicore import errors
    from backend.processing.loading.guarded_reads import GuardedRioDriver

    driver = GuardedRioDriver({}, timeout=5)
    reader = driver.open(RasterSource(uri=f"http://127.0.0.1:{port}/file"), None)
    with pytest.raises(errors.ProcessParameterInvalid, match="was not checked against the fetch policy"):
        reader.read(None, None)
    assert Handler.hits == []
