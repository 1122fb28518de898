"""Signed, expiring URLs of a job's results: reads that need no token (browsers, the JS client, other
backends and STAC tools that chain the results with load_stac).

signature = HMAC-SHA256(key, "<job id>/<kind>/<name>/<expires>"), hex, where kind is ``assets`` (a
file), ``items`` (the STAC Item of a file) or ``results`` (the results document itself, name
``collection.json``): a signature grants exactly one resource of one job until one instant, and one
kind's signature is worthless for another. The key is derived from the backend's secret key, so every
API server and runner sharing that key signs and verifies alike. Verification compares in constant
time; an expired link answers 410 ``ResultLinkExpired`` (request the results again for fresh links), a
wrong signature 403 ``ResultLinkInvalid``.

Documents served through a signed URL sign their own links with the same expiry (``expires=``), so
following links never extends access beyond the first link's lifetime.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

from apicore import errors

DOCUMENT = "collection.json"  # path segment (and signed name) of the results document's signed URL


class UrlSigner:
    def __init__(self, secret: str, ttl: int):
        self._key = hmac.new(secret.encode(), b"openeo-result-urls", hashlib.sha256).digest()
        self.ttl = ttl

    def _signature(self, job_id: str, kind: str, name: str, expires: int) -> str:
        message = f"{job_id}/{kind}/{name}/{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def expires_at(self, now: float | None = None) -> int:
        return int((now if now is not None else time.time()) + self.ttl)

    def url(self, api_root: str, job_id: str, name: str, now: float | None = None, kind: str = "assets",
            expires: int | None = None) -> str:
        """Signed URL of a result file (``assets``) or its item (``items``); ``expires`` (epoch seconds)
        defaults to now + ttl."""
        expires = self.expires_at(now) if expires is None else int(expires)
        query = urlencode({"expires": expires, "signature": self._signature(job_id, kind, name, expires)})
        return f"{api_root}/jobs/{job_id}/results/{kind}/{quote(name, safe='')}?{query}"

    def document_url(self, api_root: str, job_id: str, now: float | None = None, expires: int | None = None) -> str:
        """Signed URL of the job's results document (the ``canonical`` link)."""
        expires = self.expires_at(now) if expires is None else int(expires)
        query = urlencode({"expires": expires, "signature": self._signature(job_id, "results", DOCUMENT, expires)})
        return f"{api_root}/jobs/{job_id}/results/{DOCUMENT}?{query}"

    def verify(self, job_id: str, name: str, expires: str | None, signature: str | None,
               now: float | None = None, kind: str = "assets") -> int:
        """The link's expiry (epoch seconds) if the signature is right and not expired; else the openEO error."""
        try:
            expires_at = int(expires or "")
        except ValueError:
            raise errors.ResultLinkInvalid() from None
        expected = self._signature(job_id, kind, name, expires_at)
        if not signature or not hmac.compare_digest(expected, signature):
            raise errors.ResultLinkInvalid()
        if expires_at < (now if now is not None else time.time()):
            raise errors.ResultLinkExpired()
        return expires_at

    def verify_document(self, job_id: str, expires: str | None, signature: str | None,
                        now: float | None = None) -> int:
        return self.verify(job_id, DOCUMENT, expires, signature, now=now, kind="results")
