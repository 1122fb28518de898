"""What each backend accepts as authentication: its OIDC providers (by issuer) and whether it declares
the openEO API 1.3 JWT conformance class (then it takes raw JWTs, ``Bearer <token>``).

Cached per backend (and URL), never per user: a success for ``ttl`` seconds, served stale while it is
refreshed in the background; a failure for ``failure_ttl`` seconds, so a dead backend is not asked on
every request. Thread-safe.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from cachetools import TTLCache

from aggregator.federation.caching import StaleWhileRevalidateCache
from aggregator.federation.errors import BackendErrorResponse, BackendResponseInvalid, UpstreamError
from aggregator.federation.upstream import Upstream, Upstreams

# The JS client matches "https://api.openeo.org/*/authentication/jwt" (one path segment: the API version).
JWT_CONFORMANCE = re.compile(r"^https://api\.openeo\.org/[^/]+/authentication/jwt$")


def normalise_issuer(issuer: str) -> str:
    """Issuers compared as the same when they differ only by trailing slashes."""
    return issuer.strip().rstrip("/")


@dataclass(frozen=True)
class BackendAuthInfo:
    backend_id: str
    providers: dict[str, str] = field(default_factory=dict)  # normalised issuer -> that backend's provider id
    raw_jwt: bool = False  # declares the JWT conformance class

    def provider_for(self, issuer: str) -> str | None:
        return self.providers.get(normalise_issuer(issuer))


class UnknownBackend(KeyError):
    """Not (or no longer) a member of the federation."""


class AuthInfoUnavailable(Exception):
    """The backend's authentication details could not be read (``reason``: the upstream error's message)."""

    def __init__(self, backend_id: str, reason: str):
        self.backend_id = backend_id
        self.reason = reason
        super().__init__(reason)


class BackendAuthDirectory:
    def __init__(self, upstreams: Upstreams, *, ttl: float = 300.0, failure_ttl: float = 10.0,
                 max_stale: float = 3600.0):
        self.upstreams = upstreams
        self._cache = StaleWhileRevalidateCache(ttl, max_stale=max_stale, maxsize=4096)
        self._failures: TTLCache = TTLCache(maxsize=4096, ttl=failure_ttl)
        self._lock = threading.Lock()

    def info(self, backend_id: str) -> BackendAuthInfo:
        """Raises UnknownBackend for an id not in the federation, AuthInfoUnavailable when unreadable."""
        upstream = self.upstreams.get(backend_id)
        if upstream is None:
            raise UnknownBackend(backend_id)
        key = ("auth", backend_id, upstream.config.url)
        with self._lock:
            failure = self._failures.get(key)
        if failure is not None:
            raise AuthInfoUnavailable(backend_id, failure)
        try:
            return self._cache.get_or_call(key, lambda: discover(upstream))
        except UpstreamError as error:
            with self._lock:
                self._failures[key] = error.message
            raise AuthInfoUnavailable(backend_id, error.message) from None


def discover(upstream: Upstream) -> BackendAuthInfo:
    """Ask the backend: capabilities (conformance, endpoints) and, when listed, /credentials/oidc."""
    capabilities = upstream.get_json("")
    conforms = capabilities.get("conformsTo") or []
    raw_jwt = isinstance(conforms, list) and any(isinstance(c, str) and JWT_CONFORMANCE.match(c) for c in conforms)
    endpoints = capabilities.get("endpoints") or []
    offers_oidc = any(isinstance(e, dict) and str(e.get("path", "")).rstrip("/") == "/credentials/oidc"
                      for e in endpoints)
    providers: dict[str, str] = {}
    if offers_oidc:
        try:
            document = upstream.get_json("credentials/oidc")
        except BackendErrorResponse as error:
            if error.status != 404:
                raise
            document = {"providers": []}
        listed = document.get("providers")
        if not isinstance(listed, list):
            raise BackendResponseInvalid(upstream.id, "GET /credentials/oidc: no 'providers' list")
        for provider in listed:
            if isinstance(provider, dict) and isinstance(provider.get("issuer"), str) \
                    and isinstance(provider.get("id"), str):
                providers.setdefault(normalise_issuer(provider["issuer"]), provider["id"])
    return BackendAuthInfo(upstream.id, providers, raw_jwt)
