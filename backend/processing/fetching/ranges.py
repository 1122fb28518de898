"""Byte ranges of a checked URL, for GDAL's pixel reads of load_stac assets: the fetch policy holds here too.

GDAL's own HTTP reader (/vsicurl/, libcurl) resolves the host name again and follows every redirect
to any host: GDAL 3.10 has no option to pin an address or to stop following redirects (no
FOLLOWLOCATION or RESOLVE among its GDAL_HTTP_* settings). So asset hrefs are not given to it: GDAL
reads them through a Python file (rasterio's opener, ``loading/guarded_reads.py``) whose bytes come from
here:

* connections go only to the addresses checked when the href was accepted (its ``Target``): the name is
  never resolved again, so a DNS answer that changes between check and read changes nothing;
* a redirect is followed only on the same host name (to the same checked addresses), at most
  ``MAX_REDIRECTS`` times; anything else is refused before a connection is made;
* every answer must be the asked byte range (206 with the right Content-Range; or 200 with the whole
  file, cut here); connection and read time are limited by ``fetch_timeout``.

Blocks (``BLOCK`` bytes) are kept in a ``BlockCache`` of one load, so GDAL's many small reads of a COG's
header and the re-opens of a file for each chunk cost one request per block.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import urllib3

from backend.processing.fetching.policy import Target, _default_port
from backend.processing.fetching.transport import MAX_REDIRECTS, USER_AGENT, _reason, connection_pool

BLOCK = 256 * 1024
CACHE_BYTES = 64 * 1024 * 1024  # per load
POOL_SIZE = 8  # connections kept per (host, address, port) and process
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

MAX_POOLS = 64  # kept per process (least recently used closed first)

_pools: OrderedDict[tuple, urllib3.HTTPConnectionPool] = OrderedDict()
_pools_lock = threading.Lock()


class ReadRefused(Exception):
    """A read the policy does not allow, or an answer that is not the asked range; the message says which."""


def _pool(target: Target, address: str, timeout: float) -> urllib3.HTTPConnectionPool:
    key = (target.scheme, target.host, target.port, address, timeout)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = connection_pool(target.scheme, target.host, target.port, address,
                                                 urllib3.Timeout(connect=timeout, read=timeout), maxsize=POOL_SIZE)
            while len(_pools) > MAX_POOLS:
                _pools.popitem(last=False)[1].close()
        _pools.move_to_end(key)
        return pool


def redirected(target: Target, location: str) -> Target:
    """The target a redirect points to: the same host (so the same checked addresses), else ReadRefused."""
    url = urljoin(target.url, location)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    scheme = parts.scheme.lower()
    if host != target.host:
        raise ReadRefused(f"{target.url} redirects to another host ({host or url}); redirects are only "
                          "followed on the same host")
    if scheme not in ("http", "https") or parts.username or parts.password:
        raise ReadRefused(f"{target.url} redirects to {url}, which is not a plain http(s) URL")
    path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return replace(target, url=url, scheme=scheme, port=parts.port or _default_port(scheme), path=path)


def read_range(target: Target, start: int, end: int, timeout: float) -> tuple[bytes, int, Target]:
    """Bytes ``start``..``end`` (inclusive, clipped to the file), the file's size, and the target that
    answered (after same-host redirects)."""
    for _ in range(MAX_REDIRECTS + 1):
        status, headers, body = _get(target, start, end, timeout)
        if status in (301, 302, 303, 307, 308) and headers.get("Location"):
            target = redirected(target, headers["Location"])
            continue
        if status == 206:
            match = CONTENT_RANGE.fullmatch(headers.get("Content-Range", "").strip())
            if match is None or int(match[1]) != start or match[3] == "*":
                raise ReadRefused(f"{target.url} answered a range request with Content-Range "
                                  f"{headers.get('Content-Range')!r}, not bytes {start}-{end}")
            return body, int(match[3]), target
        if status == 200:  # the server ignores Range: the file from its start came (cut to what was asked)
            declared = headers.get("Content-Length", "")
            size = int(declared) if declared.isdigit() else len(body)
            return body[start:end + 1], size, target
        if status == 416:
            return b"", start, target
        snippet = body[:200].decode("utf-8", "replace").strip()
        raise ReadRefused(f"{target.url} answered HTTP {status}" + (f": {snippet}" if snippet else ""))
    raise ReadRefused(f"{target.url} redirects more than {MAX_REDIRECTS} times")


def _get(target: Target, start: int, end: int, timeout: float) -> tuple[int, Any, bytes]:
    """One GET of the range; at most ``end + 1`` bytes of the body are read (a server that ignores Range
    sends the whole file: the rest is not downloaded)."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", "Range": f"bytes={start}-{end}",
               "Host": target.host_header}
    last_error: Exception | None = None
    for address in target.addresses:  # the checked addresses only; never a new DNS answer
        pool = _pool(target, address, timeout)
        try:
            response = pool.urlopen("GET", target.path, headers=headers, redirect=False, retries=False,
                                    assert_same_host=False, preload_content=False, decode_content=False)
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
            last_error = exc
            continue
        except urllib3.exceptions.HTTPError as exc:
            raise ReadRefused(f"could not read {target.url}: {_reason(exc)}") from None
        try:
            limit = end + 1 if response.status in (200, 206) else 1024
            body = response.read(limit, decode_content=False) or b""
            complete = len(body) < limit or not response.read(1, decode_content=False)
        except urllib3.exceptions.HTTPError as exc:
            response.close()
            raise ReadRefused(f"could not read {target.url}: {_reason(exc)}") from None
        if complete:
            response.release_conn()
        else:
            response.close()  # the rest of a whole file is not wanted
        return response.status, response.headers, body
    raise ReadRefused(f"could not connect to {target.url}: {_reason(last_error)}")


@dataclass
class _Entry:
    target: Target  # where the bytes come from (after redirects)
    size: int


class BlockCache:
    """The blocks of the files of one load (LRU, at most ``CACHE_BYTES``); thread-safe."""

    def __init__(self, timeout: float, block: int = BLOCK, capacity: int = CACHE_BYTES):
        self.timeout = timeout
        self.block = block
        self.capacity = capacity
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._files: dict[str, _Entry] = {}
        self._held = 0
        self._lock = threading.Lock()
        self.requests = 0

    def size(self, target: Target) -> int:
        """The file's size (its first block is read and kept)."""
        entry = self._files.get(target.url)
        if entry is None:
            self._fetch(target, 0, 0)
            entry = self._files[target.url]
        return entry.size

    def read(self, target: Target, offset: int, length: int) -> bytes:
        size = self.size(target)
        end = min(offset + length, size)
        if offset >= end:
            return b""
        first, last = offset // self.block, (end - 1) // self.block
        with self._lock:
            missing = [i for i in range(first, last + 1) if (target.url, i) not in self._blocks]
        if missing:
            self._fetch(target, missing[0], missing[-1])
        parts = []
        with self._lock:
            for i in range(first, last + 1):
                data = self._blocks.get((target.url, i))
                if data is None:  # evicted meanwhile by another thread: read it again below
                    break
                self._blocks.move_to_end((target.url, i))
                parts.append(data)
        if len(parts) != last - first + 1:
            data, _, _ = read_range(self._files[target.url].target, first * self.block, end - 1, self.timeout)
            return data[offset - first * self.block:]
        data = b"".join(parts)
        return data[offset - first * self.block:end - first * self.block]

    def _fetch(self, target: Target, first: int, last: int) -> None:
        entry = self._files.get(target.url)
        source = entry.target if entry is not None else target
        start, end = first * self.block, (last + 1) * self.block - 1
        data, size, answered = read_range(source, start, end, self.timeout)
        self.requests += 1
        with self._lock:
            self._files.setdefault(target.url, _Entry(answered, size))
            for i in range(first, last + 1):
                chunk = data[(i - first) * self.block:(i - first + 1) * self.block]
                if not chunk:
                    break
                key = (target.url, i)
                if key not in self._blocks:
                    self._blocks[key] = chunk
                    self._held += len(chunk)
            while self._held > self.capacity and self._blocks:
                _, dropped = self._blocks.popitem(last=False)
                self._held -= len(dropped)
