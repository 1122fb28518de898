"""Pixel reads of load_stac's asset hrefs under the fetch policy: GDAL reads them through a Python file.

odc-stac hands every asset href to rasterio, and GDAL's /vsicurl/ would read it with libcurl: a second
DNS lookup (DNS rebinding) and redirects followed to any host, past the fetch policy. Here the load uses
``GuardedRioDriver``: odc-stac's rasterio reading (odc.loader ``rio_read``: windows, overviews,
reprojection) unchanged, but each file is opened through rasterio's Python opener (a VSI plugin) whose
bytes come from ``fetching.ranges``: only the checked addresses, same-host redirects only.

The driver carries the checked target of every href it may read (``pins``: href → Target, made by
``Fetcher.check_href``) and is pickled with the load's tasks, so Dask workers in other processes read
under the same rule. A href that was not checked is refused (fail closed). load_collection (operator
catalogs, local files) does not use this driver: its reads are exactly as before.
"""

from __future__ import annotations

import os
import posixpath
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

from odc.loader import RioDriver
from odc.loader._rio import rio_read
from odc.stac._mdtools import StacAuxReader
from rasterio._vsiopener import FileContainer, _opener_registration

from apicore import errors
from backend.processing.fetching.policy import Target
from backend.processing.fetching.ranges import BlockCache, ReadRefused

PROCESS = "load_stac"


def refusal(reason: str) -> errors.OpenEOError:
    return errors.ProcessParameterInvalid(process=PROCESS, parameter="url", reason=f"reading pixels: {reason}")


class GuardedRioDriver(RioDriver):
    """odc-stac's rasterio driver whose files are read only through ``fetching.ranges``."""

    def __init__(self, pins: dict[str, Target], timeout: float):
        super().__init__(aux_reader=StacAuxReader())
        self.pins = dict(pins)
        self.timeout = timeout
        self._cache: BlockCache | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"], state["_lock"] = None, None  # a worker process builds its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def cache(self) -> BlockCache:
        with self._lock:
            if self._cache is None:
                self._cache = BlockCache(self.timeout)
            return self._cache

    def open(self, src, ctx) -> GuardedRioReader:
        return GuardedRioReader(src, self)


class GuardedRioReader:
    def __init__(self, src, driver: GuardedRioDriver):
        self._src = src
        self._driver = driver

    def read(self, cfg, dst_geobox, *, dst=None, selection=None):
        target = self._driver.pins.get(self._src.uri)
        if target is None:
            raise refusal(f"{self._src.uri} was not checked against the fetch policy, so it is not read")
        opener = PinnedOpener(target, self._driver.cache)
        check_format(target, opener)
        with _opener_registration(opener.name, opener) as vsi_path:
            try:
                return rio_read(self._src.patch(uri=vsi_path), cfg, dst_geobox, dst=dst, selection=selection)
            except Exception:
                if opener.refused is not None:
                    raise refusal(opener.refused) from None
                raise


# GDAL picks a driver by a file's content: a VRT (XML) or another format that names further files would make
# GDAL itself read any URL (/vsicurl/) or any file of the server. Only self-contained formats are opened.
MAGIC = {b"II*\x00": "GeoTIFF", b"MM\x00*": "GeoTIFF", b"II+\x00": "BigTIFF", b"MM\x00+": "BigTIFF",
         b"\x00\x00\x00\x0cjP  \r\n\x87\n": "JPEG 2000", b"\xffO\xffQ": "JPEG 2000 codestream"}


def check_format(target: Target, opener: PinnedOpener) -> None:
    head = opener.read(0, 12)
    if opener.refused is not None:
        raise refusal(opener.refused)
    if not any(head.startswith(magic) for magic in MAGIC):
        raise refusal(f"{target.url} is not a GeoTIFF or JPEG 2000 file (it starts with {head[:8]!r}); only "
                      "those are read from STAC assets")


class PinnedOpener(FileContainer):
    """rasterio's opener of one checked file: its only path is ``name``; every other path (GDAL's side-car
    probes: .aux.xml, .ovr, .msk) does not exist, so nothing else is requested."""

    def __init__(self, target: Target, cache: BlockCache):
        self.target = target
        self.cache = cache
        base = posixpath.basename(urlsplit(target.url).path) or "data"
        self.name = f"{uuid.uuid4().hex}/{base}"
        self.refused: str | None = None  # why a read failed (GDAL only sees a failed read)

    def _mine(self, path: str) -> bool:
        return path.lstrip("/") == self.name

    def open(self, path: str, mode: str = "rb", **kwds: Any) -> PinnedFile:
        if not self._mine(path) or "r" not in mode or "+" in mode:
            raise FileNotFoundError(path)
        return PinnedFile(self, self.size(path))

    def isfile(self, path: str) -> bool:
        return self._mine(path)

    def isdir(self, path: str) -> bool:
        return False

    def ls(self, path: str) -> list[str]:
        return []

    def mtime(self, path: str) -> int:
        return 0

    def rm(self, path: str) -> None:
        raise PermissionError(path)

    def size(self, path: str) -> int:
        if not self._mine(path):
            raise FileNotFoundError(path)
        try:
            return self.cache.size(self.target)
        except ReadRefused as exc:
            self.refused = str(exc)
            raise FileNotFoundError(path) from None

    def read(self, offset: int, length: int) -> bytes:
        try:
            return self.cache.read(self.target, offset, length)
        except ReadRefused as exc:
            self.refused = str(exc)
            return b""  # GDAL sees a short read; the reader raises the refusal


class PinnedFile:
    """A read-only, seekable file over ``PinnedOpener.read`` (what rasterio's VSI plugin calls)."""

    def __init__(self, opener: PinnedOpener, size: int):
        self._opener = opener
        self._size = size
        self._pos = 0
        self.closed = False

    def __enter__(self) -> PinnedFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        data = self._opener.read(self._pos, size)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self.closed = True
