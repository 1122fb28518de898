"""A backend's streamed answer as the aggregator's ``Download``: its body passed through chunk by chunk,
its headers that clients read (``OpenEO-Costs``, ``OpenEO-Identifier``, ``Link``, ``Content-Disposition``)
kept, the upstream connection closed when the server is done with the body (sent or abandoned).

The first chunk is read before the answer starts, so a backend that breaks off at once still gets the
user a proper openEO error (502/503/504 naming it); a break later can only cut the stream short (the
status line is gone by then), which is logged and counts against the backend's health.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator

import requests
from urllib3.exceptions import HTTPError, ReadTimeoutError

from aggregator.federation.errors import BackendTimeout, BackendUnavailable, UpstreamError
from aggregator.federation.upstream import Upstream
from apicore.services import Download

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
PASSED_HEADERS = ("OpenEO-Costs", "OpenEO-Identifier", "Link", "Content-Disposition")


def streamed_download(upstream: Upstream, response: requests.Response, what: str,
                      on_close: Callable[[], None]) -> Download:
    """The Download of an unread upstream ``response`` (``Upstream.request(..., stream=True)``);
    ``on_close`` runs once with the response's own cleanup. Raises an UpstreamError (and cleans up)
    when the body breaks off before its first chunk."""
    def close() -> None:
        try:
            response.close()
        finally:
            on_close()

    chunks = response.iter_content(CHUNK_BYTES)
    try:
        first = next(chunks, b"")
    except Exception as exc:
        close()
        raise _broken(upstream, what, exc) from None
    headers = {name: response.headers[name] for name in PASSED_HEADERS if name in response.headers}
    size = response.headers.get("Content-Length")
    known_size = int(size) if size and size.isdigit() and "Content-Encoding" not in response.headers else None
    return Download(media_type=response.headers.get("Content-Type") or "application/octet-stream",
                    chunks=_rest(first, chunks, upstream, what), size=known_size, headers=headers, cleanup=close)


def _rest(first: bytes, chunks: Iterator[bytes], upstream: Upstream, what: str) -> Iterator[bytes]:
    if first:
        yield first
    try:
        yield from chunks
    except Exception as exc:
        error = _broken(upstream, what, exc)
        log.warning("%s: the answer of backend '%s' broke off while it was streamed: %s", what, upstream.id,
                    error.message)
        raise error from None


def _broken(upstream: Upstream, what: str, exc: Exception) -> UpstreamError:
    """The openEO error of a body that broke off, reported to the backend's health."""
    cause = exc.args[0] if isinstance(exc, requests.RequestException) and exc.args else exc
    if isinstance(exc, requests.Timeout) or isinstance(cause, ReadTimeoutError):
        error: UpstreamError = BackendTimeout(upstream.id, upstream.timeouts.result, "send its whole answer")
    elif isinstance(exc, (requests.RequestException, HTTPError, OSError)):
        error = BackendUnavailable(upstream.id, f"{what}: the answer broke off ({type(exc).__name__})")
    else:
        raise exc
    upstream.record_failure(error)
    return error
