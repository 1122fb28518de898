"""Signed, expiring URLs for job result files: downloads that need no token (browsers, the JS client).

signature = HMAC-SHA256(key, "<job id>/<kind>/<name>/<expires>"), hex (kind: ``assets`` for files,
``items`` for their STAC Items); the key is derived from the
backend's secret key, so every API server and runner sharing that key signs and verifies alike.
Verification compares in constant time; an expired link answers 410 ``ResultLinkExpired`` (request the
results again for fresh links), a wrong signature 403 ``ResultLinkInvalid``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

from apicore import errors


class UrlSigner:
    def __init__(self, secret: str, ttl: int):
        self._key = hmac.new(secret.encode(), b"openeo-result-urls", hashlib.sha256).digest()
        self.ttl = ttl

    def _signature(self, job_id: str, kind: str, name: str, expires: int) -> str:
        message = f"{job_id}/{kind}/{name}/{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, api_root: str, job_id: str, name: str, now: float | None = None, kind: str = "assets") -> str:
        expires = int((now if now is not None else time.time()) + self.ttl)
        query = urlencode({"expires": expires, "signature": self._signature(job_id, kind, name, expires)})
        return f"{api_root}/jobs/{job_id}/results/{kind}/{quote(name, safe='')}?{query}"

    def expires_at(self, now: float | None = None) -> int:
        return int((now if now is not None else time.time()) + self.ttl)

    def verify(self, job_id: str, name: str, expires: str | None, signature: str | None,
               now: float | None = None, kind: str = "assets") -> None:
        try:
            expires_at = int(expires or "")
        except ValueError:
            raise errors.ResultLinkInvalid() from None
        expected = self._signature(job_id, kind, name, expires_at)
        if not signature or not hmac.compare_digest(expected, signature):
            raise errors.ResultLinkInvalid()
        if expires_at < (now if now is not None else time.time()):
            raise errors.ResultLinkExpired()
