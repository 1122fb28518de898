"""Responses for large, rarely changing JSON (processes, collections): serialised once, gzipped once when
first asked for (not before: a freshly merged listing's first answer should not wait for compression a
client may not want; level 3 keeps nearly level 6's size on JSON at about half its time)."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

from flask import Response, request

GZIP_MIN_BYTES = 1024


class FrozenJson:
    """A JSON document serialised once; ``response()`` serves it gzipped when accepted, with an ETag."""

    def __init__(self, data: Any):
        self.body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        self._gzipped: bytes | None = None
        self.etag = hashlib.sha256(self.body).hexdigest()[:32]

    @property
    def gzipped(self) -> bytes:
        # Two first requests at once may both compress: same bytes, no lock needed.
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, 3, mtime=0)
        return self._gzipped

    def response(self, status: int = 200) -> Response:
        if request.if_none_match.contains(self.etag):
            response = Response(status=304)
        elif len(self.body) >= GZIP_MIN_BYTES and accepts_gzip():
            response = Response(self.gzipped, status=status, content_type="application/json")
            response.headers["Content-Encoding"] = "gzip"
        else:
            response = Response(self.body, status=status, content_type="application/json")
        response.set_etag(self.etag)
        response.vary.add("Accept-Encoding")
        return response


def accepts_gzip() -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


def gzip_response(response: Response) -> Response:
    """after_request hook: gzip other sizeable JSON responses when the client accepts it."""
    if (response.direct_passthrough or response.status_code < 200 or response.status_code >= 300
            or "Content-Encoding" in response.headers or response.mimetype != "application/json"
            or not accepts_gzip()):
        return response
    body = response.get_data()
    if len(body) < GZIP_MIN_BYTES:
        return response
    response.set_data(gzip.compress(body, 5, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response
