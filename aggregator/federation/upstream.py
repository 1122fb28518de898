"""HTTP to the backends: one ``Upstream`` per backend with a pooled session, failures as ``UpstreamError``.

The session holds connection pools only: no auth, no cookies, no environment (``.netrc`` could add an
Authorization header). Every call passes its own headers (the user's token), so one session serves all
request threads at once.

Retries: a GET/HEAD/OPTIONS whose pooled keep-alive connection turns out to be dead (reset, closed
without an answer) is retried once at once on a fresh connection; nothing else is retried (a refused or
timed-out backend would only double the wait, and a POST may have had effects).
"""

from __future__ import annotations

import http.cookiejar
import json as jsonlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Mapping, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError, NameResolutionError, NewConnectionError, ProtocolError, ReadTimeoutError

from backend import __version__
from aggregator.federation.backends import BackendConfig, BackendRegistry
from aggregator.federation.errors import (BackendErrorResponse, BackendResponseInvalid, BackendTimeout,
                                          BackendUnavailable, UpstreamError)

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY_BYTES = 64 * 1024 * 1024  # of a non-streamed answer: a garbage-speaking backend must not fill our memory
MAX_ERROR_BYTES = 64 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Seconds; ``connect`` for every call, a read timeout per kind of call (between bytes received)."""

    connect: float = 1.0
    metadata: float = 5.0  # capabilities, collections, processes, formats, ...
    jobs: float = 30.0  # job create/start/list/results/logs
    result: float = 900.0  # synchronous processing (POST /result)


class HealthSignals(Protocol):
    """What an Upstream tells the health monitor, and asks it (the circuit breaker)."""

    def is_open(self, backend_id: str) -> bool: ...

    def record_success(self, backend_id: str) -> None: ...

    def record_failure(self, backend_id: str, error: UpstreamError) -> None: ...


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie, request) -> bool:  # a backend's cookie must never reach another user
        return False


def _new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies/.netrc from the environment: predictable, no injected auth
    session.headers["User-Agent"] = f"openeo-aggregator/{__version__} {requests.utils.default_user_agent()}"
    session.cookies.set_policy(_NoCookies())
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Upstream:
    """Calls to one backend. Thread-safe; per-call headers and timeouts; failures raise UpstreamError."""

    def __init__(self, config: BackendConfig, *, timeouts: Timeouts = Timeouts(),
                 health: HealthSignals | None = None, pool_size: int = 16, max_body_bytes: int = MAX_BODY_BYTES):
        self.config = config
        self.timeouts = timeouts
        self.health = health
        self.pool_size = pool_size
        self.max_body_bytes = max_body_bytes
        self._session = _new_session(pool_size)
        self._pid = os.getpid()

    def _session_here(self) -> requests.Session:
        """The session of this process: connections opened before a fork must not be shared."""
        if self._pid != os.getpid():
            self._session, self._pid = _new_session(self.pool_size), os.getpid()
        return self._session

    @property
    def id(self) -> str:
        return self.config.id

    def unavailable(self) -> UpstreamError | None:
        """The error to report without calling, when the circuit breaker holds this backend open."""
        if self.health is not None and self.health.is_open(self.id):
            return BackendUnavailable(self.id, "marked offline after repeated failures; skipped until its "
                                               "next successful health check")
        return None

    def get_json(self, path: str, *, headers: Mapping[str, str] | None = None,
                 params: Mapping[str, Any] | None = None, timeout: float | None = None) -> dict:
        """GET ``path`` (relative to the API root) and return its JSON object (read timeout: ``timeout``,
        default ``timeouts.metadata``)."""
        return self.request_json("GET", path, headers=headers, params=params, timeout=timeout)

    def request_json(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                     params: Mapping[str, Any] | None = None, json: Any = None,
                     timeout: float | None = None) -> dict:
        """``request`` whose answer must be a JSON object (e.g. ``POST /validation``), returned parsed."""
        return self.request_json_status(method, path, headers=headers, params=params, json=json, timeout=timeout)[0]

    def request_json_status(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                            params: Mapping[str, Any] | None = None, json: Any = None, timeout: float | None = None,
                            ok_statuses: Collection[int] = ()) -> tuple[dict, int]:
        """``request_json`` that also returns the status, and takes the error statuses in ``ok_statuses`` as
        answers (e.g. 424 of ``GET /jobs/{id}/results``: a failed job's error log entry)."""
        response = self.request(method, path, headers=headers, params=params, json=json, timeout=timeout,
                                ok_statuses=ok_statuses)
        return self.json_object(response, f"{method.upper()} /{path.lstrip('/')}"), response.status_code

    def json_object(self, response: requests.Response, what: str) -> dict:
        """The JSON object of a read ``response``; anything else is this backend's invalid answer."""
        try:
            document = _parse_json(response.content, self.id, what)
            if not isinstance(document, dict):
                raise BackendResponseInvalid(self.id, f"{what}: expected a JSON object, got {type(document).__name__}")
        except UpstreamError as error:
            raise self._failed(error)
        return document

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                params: Mapping[str, Any] | None = None, json: Any = None, data: Any = None,
                timeout: float | None = None, stream: bool = False,
                allow_redirects: bool | None = None, ok_statuses: Collection[int] = ()) -> requests.Response:
        """One call to ``path`` (relative to the API root); returns a 1xx-3xx response.

        ``timeout`` is the read timeout (default ``timeouts.metadata``). Without ``stream`` the body is
        read here: at most ``max_body_bytes``, all of it within ``timeout`` s of the headers (a backend
        trickling bytes cannot hold the caller). With ``stream=True`` the caller reads and must close it.
        4xx/5xx answers (except ``ok_statuses``) raise ``BackendErrorResponse`` (the backend's openEO error)
        or ``BackendResponseInvalid``; transport failures raise ``BackendUnavailable``/``BackendTimeout``.
        An open circuit raises at once; every outcome is reported to ``health``.
        """
        skipped = self.unavailable()
        if skipped is not None:
            raise skipped
        method = method.upper()
        what = f"{method} /{path.lstrip('/')}"
        read_timeout = timeout or self.timeouts.metadata
        response = self._send(method, path, what, read_timeout, allow_redirects, headers=dict(headers or {}),
                              params=params, json=json, data=data)
        if response.status_code >= 400 and response.status_code not in ok_statuses:
            with response:
                raise self._failed(self._error_from(response, what))
        if not stream:
            try:
                with response:
                    body = _read_limited(response, self.id, what, limit=self.max_body_bytes, seconds=read_timeout)
            except UpstreamError as error:
                raise self._failed(error)
            response._content, response._content_consumed = body, True  # what requests does when it reads
        self._succeeded()
        return response

    def _send(self, method: str, path: str, what: str, read_timeout: float, allow_redirects: bool | None,
              **arguments: Any) -> requests.Response:
        """Headers of the answer (its body unread), with the one retry of an idempotent call."""
        if allow_redirects is None:
            allow_redirects = method in IDEMPOTENT
        attempts = 2 if method in IDEMPOTENT else 1
        for attempt in range(attempts):
            try:
                return self._session_here().request(
                    method, self.config.endpoint(path), timeout=(self.timeouts.connect, read_timeout),
                    stream=True, allow_redirects=allow_redirects, **arguments)
            except requests.ConnectTimeout:
                raise self._failed(BackendTimeout(self.id, self.timeouts.connect, "accept a connection"))
            except requests.ReadTimeout:
                raise self._failed(BackendTimeout(self.id, read_timeout))
            except requests.ConnectionError as exc:
                if attempt + 1 < attempts and _broken_pooled_connection(exc):
                    log.info("retrying %s on %s after a dropped connection", what, self.id)
                    continue
                raise self._failed(BackendUnavailable(self.id, f"{what}: {_describe(exc)}"))
            except requests.RequestException as exc:  # invalid URL, too many redirects, ...
                raise self._failed(BackendResponseInvalid(self.id, f"{what}: {_describe(exc)}"))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._session.close()

    # -- outcome bookkeeping --

    def record_failure(self, error: UpstreamError) -> None:
        """A failure seen outside this object's calls (e.g. a fan-out's missed deadline), for the breaker."""
        self._failed(error)

    def _failed(self, error: UpstreamError) -> UpstreamError:
        if self.health is not None:
            if error.backend_down:
                self.health.record_failure(self.id, error)
            else:
                self.health.record_success(self.id)
        return error

    def _succeeded(self) -> None:
        if self.health is not None:
            self.health.record_success(self.id)

    def _error_from(self, response: requests.Response, what: str) -> UpstreamError:
        status = response.status_code
        content_type = response.headers.get("Content-Type", "no content type")
        try:
            body = _read_limited(response, self.id, what, limit=MAX_ERROR_BYTES, seconds=self.timeouts.metadata)
            document = _parse_json(body, self.id, what)
        except UpstreamError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("code"), str) \
                and isinstance(document.get("message"), str):
            links = document.get("links")
            return BackendErrorResponse(self.id, status, document["code"], document["message"],
                                        links=links if isinstance(links, list) else None,
                                        upstream_request_id=str(document.get("id") or "") or None)
        error = BackendResponseInvalid(self.id, f"{what} answered HTTP {status} ({content_type}) "
                                                "without an openEO error")
        error.backend_down = status >= 500
        error.upstream_status = status  # for callers that judge the status itself (onboarding checks)
        return error


def _parse_json(body: bytes, backend_id: str, what: str) -> Any:
    try:
        return jsonlib.loads(body)
    except ValueError as exc:
        raise BackendResponseInvalid(backend_id, f"{what}: not JSON: {exc}") from None


def _read_limited(response: requests.Response, backend_id: str, what: str, *, limit: int,
                  seconds: float) -> bytes:
    """The body: at most ``limit`` bytes, all within ``seconds``.

    ``read1`` returns whatever has arrived (urllib3's ``read(n)`` and requests' ``iter_content`` wait for
    n bytes), so the deadline is checked at least once per read timeout even for a trickling body.
    """
    deadline = time.monotonic() + seconds
    read = getattr(response.raw, "read1", response.raw.read)  # urllib3 < 2.3 has no read1
    chunks: list[bytes] = []
    size = 0
    try:
        # decode_content: the body as the backend meant it (ours gzip JSON for any client that accepts
        # it, and requests always does), so the limit also counts decompressed bytes.
        while chunk := read(64 * 1024, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise BackendResponseInvalid(backend_id, f"{what}: body larger than {limit} bytes")
            if time.monotonic() > deadline:
                raise BackendTimeout(backend_id, seconds, "send its whole answer")
            chunks.append(chunk)
    except ReadTimeoutError:
        raise BackendTimeout(backend_id, seconds) from None
    except (ProtocolError, OSError) as exc:  # connection lost or body cut short
        raise BackendUnavailable(backend_id, f"{what}: connection lost during the answer: {_describe(exc)}") from None
    except HTTPError as exc:  # e.g. a body that does not decode (gzip)
        raise BackendResponseInvalid(backend_id, f"{what}: {_describe(exc)}") from None
    return b"".join(chunks)


def _broken_pooled_connection(exc: requests.ConnectionError) -> bool:
    """True when an existing connection died (worth one retry), False when none could be opened."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return not isinstance(reason, (NewConnectionError, NameResolutionError))


_SHORT_REASONS = {"Connection refused": "connection refused", "Name or service not known": "host name not found",
                  "Failed to resolve": "host name not found", "Connection reset": "connection reset",
                  "RemoteDisconnected": "connection closed without an answer",
                  "Connection aborted": "connection closed without an answer"}


def _describe(exc: Exception) -> str:
    """A short reason for users instead of urllib3's nested repr."""
    reason = exc.args[0] if exc.args else exc
    text = str(getattr(reason, "reason", reason))
    return next((short for marker, short in _SHORT_REASONS.items() if marker in text), text[:200])


class Upstreams:
    """The Upstream of every active backend, following the registry (new backends usable at once)."""

    def __init__(self, registry: BackendRegistry, *, timeouts: Timeouts = Timeouts(),
                 health: HealthSignals | None = None, pool_size: int = 16):
        self.registry = registry
        self.timeouts = timeouts
        self.health = health
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._by_id: dict[str, Upstream] = {}

    def get(self, backend_id: str) -> Upstream | None:
        config = self.registry.get(backend_id)
        return self._upstream_for(config) if config else None

    def active(self) -> list[Upstream]:
        """One Upstream per active backend, in registry order."""
        return [self._upstream_for(config) for config in self.registry.snapshot()]

    def select(self, backend_ids: Iterable[str]) -> list[Upstream]:
        wanted = set(backend_ids)
        return [upstream for upstream in self.active() if upstream.id in wanted]

    def _upstream_for(self, config: BackendConfig) -> Upstream:
        upstream = self._by_id.get(config.id)
        if upstream is not None and upstream.config == config:
            return upstream
        with self._lock:
            upstream = self._by_id.get(config.id)
            if upstream is None or upstream.config != config:
                # A replaced Upstream is left to the garbage collector: closing it could break calls in flight.
                upstream = Upstream(config, timeouts=self.timeouts, health=self.health, pool_size=self.pool_size)
                self._by_id = {**{k: v for k, v in self._by_id.items() if k in self.registry}, config.id: upstream}
            return upstream
