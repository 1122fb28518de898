"""The federation's caller: who the user is, and what to send each backend on their behalf."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from aggregator.federation.errors import UpstreamError


class Resolution(NamedTuple):
    """Headers for one backend, or None and why not."""

    headers: dict[str, str] | None
    reason: str | None = None


class Credentials(Protocol):
    """Per-backend credentials of one caller. Immutable and request-scoped: nothing per user is shared."""

    def resolve(self, backend_id: str) -> Resolution: ...


class BackendCredentialsMissing(UpstreamError):
    """This caller has no credentials that backend accepts: the backend is missing for them (in a listing
    it lands in ``federation:missing``; a call to that backend alone answers this error)."""

    code = "BackendCredentialsMissing"
    status = 403
    template = "Backend '{backend_id}' cannot be used with your login: {reason}."
    backend_down = False  # says nothing about the backend's health

    def __init__(self, backend_id: str, reason: str):
        super().__init__(backend_id, reason=reason)


@dataclass(frozen=True)
class FederatedCaller:
    """The caller of the shared views (``user_id``, ``name``) plus per-backend credentials."""

    user_id: str
    name: str
    credentials: Credentials

    def headers_for(self, backend_id: str) -> dict[str, str] | None:
        """The headers (``Authorization``) to send backend ``backend_id``; None: no usable credentials
        (``missing_reason`` says why). May ask the backend for its OIDC providers once per cache period,
        so call it inside the fan-out's call, not before."""
        return self.credentials.resolve(backend_id).headers

    def missing_reason(self, backend_id: str) -> str | None:
        return self.credentials.resolve(backend_id).reason

    def upstream_headers(self, backend_id: str) -> dict[str, str]:
        """Like ``headers_for``, but raises ``BackendCredentialsMissing`` (an UpstreamError: a fan-out
        reports the backend as missing) instead of returning None."""
        headers, reason = self.credentials.resolve(backend_id)
        if headers is None:
            raise BackendCredentialsMissing(backend_id, reason or "no credentials for it")
        return headers
