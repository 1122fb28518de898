"""What can go wrong talking to a backend, as openEO errors that name the backend.

Every failure of an upstream call is an ``UpstreamError`` (an ``apicore.errors.OpenEOError``, so the
Flask handler renders it as openEO JSON). Listings put the failed backend's id in
``federation:missing``; single-backend calls raise the error to the user:

=========================  ======  ============================================================
class                      status  when
=========================  ======  ============================================================
BackendUnavailable         503     connection refused, DNS failure, connection reset, circuit open,
                                   too many calls already pending on that backend
BackendTimeout             504     no connection within the connect timeout, no answer within the
                                   read timeout, or not done by a fan-out's deadline
BackendResponseInvalid     502     2xx that is not the expected JSON, an error that is not openEO
                                   JSON (e.g. an HTML 500 of a proxy), an oversized body
BackendErrorResponse       theirs  the backend's own openEO error: its status and code are kept,
                                   the message is prefixed with the backend id
BackendDeparted            410     the backend owning the resource left the federation (when, who)
=========================  ======  ============================================================

The first three codes are not in the openEO errors.json (it has no 502/504 codes); they are defined here
until apicore.errors lists them.
"""

from __future__ import annotations

from typing import Any

from apicore.errors import OpenEOError


class UpstreamError(OpenEOError):
    """A call to backend ``backend_id`` failed; ``backend_down`` says whether it counts against its health."""

    code = "BackendUnavailable"
    status = 503
    template = "Backend '{backend_id}' is not available."
    #: True when the failure says the backend itself is unwell (feeds the circuit breaker); False for
    #: answers that prove it alive (e.g. a 404 for an unknown job).
    backend_down = True

    def __init__(self, backend_id: str, message: str | None = None, **fields: Any):
        self.backend_id = backend_id
        super().__init__(message, backend_id=backend_id, **fields)


class BackendUnavailable(UpstreamError):
    code = "BackendUnavailable"
    status = 503
    template = "Backend '{backend_id}' is not reachable ({reason}). Try again later."

    def __init__(self, backend_id: str, reason: str):
        super().__init__(backend_id, reason=reason)


class BackendTimeout(UpstreamError):
    code = "BackendTimeout"
    status = 504
    template = "Backend '{backend_id}' did not {what} within {seconds} s. Try again later."

    def __init__(self, backend_id: str, seconds: float, what: str = "answer"):
        super().__init__(backend_id, seconds=f"{seconds:g}", what=what)


class BackendResponseInvalid(UpstreamError):
    code = "BackendResponseInvalid"
    status = 502
    template = "Backend '{backend_id}' sent an invalid response ({reason}). Try again later."

    def __init__(self, backend_id: str, reason: str):
        super().__init__(backend_id, reason=reason)


class BackendErrorResponse(UpstreamError):
    """The backend answered with its own openEO error: keep its HTTP status, code and links."""

    def __init__(self, backend_id: str, status: int, code: str, message: str, *,
                 links: list[dict] | None = None, upstream_request_id: str | None = None):
        self.status = status
        self.code = code
        self.upstream_message = message
        self.upstream_request_id = upstream_request_id
        # Gateway-type statuses say the backend (or its proxy) is unwell; any other error proves it alive.
        self.backend_down = status in (502, 503, 504)
        super().__init__(backend_id, f"Backend '{backend_id}': {message}", links=links)


class BackendDeparted(UpstreamError):
    """The backend owning a resource (a job) was removed from the federation: 410 with when and who.

    ``departure`` is ``BackendRegistry.departed(backend_id)`` (aggregator/federation/backends.py)."""

    code = "BackendDeparted"
    status = 410
    template = "{reason}."
    backend_down = False  # says nothing about a backend's health: it is simply gone

    def __init__(self, departure: Any, what: str | None = None):
        reason = departure.message()
        if what:
            reason = f"{what} is not available: {reason}"
        super().__init__(departure.backend_id, reason=reason[0].upper() + reason[1:])
