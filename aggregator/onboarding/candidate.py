"""The backend under check: its API root and server root reached through the aggregator's HTTP plumbing
(``Upstream``: pooled, per-call timeouts, failures as ``UpstreamError``), documents fetched once however
many checks read them, and the credentials given for the check.

Credentials are optional: without them the checks that need a user (the small sync request, signed
result URLs) are skipped with that reason. Basic credentials are exchanged for a token at the candidate
(``GET /credentials/basic``); an access token is sent as given (``Bearer <token>``, e.g.
``oidc/<provider>/<jwt>`` or ``basic//<token>``).
"""

from __future__ import annotations

import base64
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from aggregator.federation.backends import BackendConfig
from aggregator.federation.errors import (BackendErrorResponse, BackendResponseInvalid, BackendTimeout,
                                          BackendUnavailable, UpstreamError)
from aggregator.federation.upstream import Timeouts, Upstream

MAX_CHECK_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class CheckCredentials:
    """A user of the candidate for the checks that need one: ``username``/``password`` or ``token``."""

    username: str | None = None
    password: str | None = None
    token: str | None = None  # what follows "Bearer ", e.g. "basic//abc" or "oidc/egi/eyJ..."

    def given(self) -> bool:
        return bool(self.token or (self.username and self.password is not None))


@dataclass(frozen=True)
class CheckOptions:
    """Seconds: ``timeout`` per metadata call, ``result_timeout`` for the sync request, ``deadline`` for
    the whole self-check (a check still running then is reported failed)."""

    connect_timeout: float = 3.0
    timeout: float = 10.0
    result_timeout: float = 60.0
    deadline: float = 90.0
    federation_issuers: tuple[str, ...] = ()  # the aggregator's OIDC issuers (empty: that check is skipped)
    cors_origin: str = "https://editor.openeo.org"


class CredentialsNotGiven(Exception):
    pass


def http_status(error: UpstreamError) -> int | None:
    """The HTTP status the candidate answered with, if it answered at all."""
    if isinstance(error, BackendErrorResponse):
        return error.status
    return getattr(error, "upstream_status", None)


def explain(error: UpstreamError) -> str:
    """An upstream failure in words for a partner (without the "try again later" meant for users)."""
    if isinstance(error, BackendErrorResponse):
        return f"answered HTTP {error.status} {error.code}: {error.upstream_message}"
    if isinstance(error, BackendTimeout):
        return f"did not {error.fields.get('what', 'answer')} within {error.fields.get('seconds')} s"
    if isinstance(error, BackendUnavailable):
        return f"not reachable ({_without_request(error)})"
    if isinstance(error, BackendResponseInvalid):
        return _without_request(error)
    return error.message


def _without_request(error: UpstreamError) -> str:
    """The upstream reason without its leading "GET /path: " (the checks name the request themselves)."""
    return re.sub(r"^[A-Z]+ /\S*?:? (?=\S)", "", str(error.fields.get("reason")))


class Candidate:
    def __init__(self, url: str, *, credentials: CheckCredentials | None = None,
                 options: CheckOptions = CheckOptions(), backend_id: str = "candidate"):
        self.config = BackendConfig(id=backend_id, url=url)  # ValueError for a URL that cannot be an API root
        self.url = self.config.url
        self.credentials = credentials or CheckCredentials()
        self.options = options
        self.timeouts = Timeouts(connect=options.connect_timeout, metadata=options.timeout, jobs=options.timeout,
                                 result=options.result_timeout)
        self.api = self._upstream(self.url)
        parts = urlsplit(self.url)
        self.server_root = f"{parts.scheme}://{parts.netloc}/"
        self.server = self._upstream(self.server_root)
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._memo: dict[str, tuple[bool, object]] = {}

    def _upstream(self, url: str) -> Upstream:
        return Upstream(BackendConfig(id=self.config.id, url=url), timeouts=self.timeouts, health=None,
                        pool_size=4, max_body_bytes=MAX_CHECK_BODY_BYTES)

    def upstream_for(self, absolute_url: str) -> tuple[Upstream, str]:
        """An Upstream for another host (e.g. where result files live) and the path to ask it for."""
        parts = urlsplit(absolute_url)
        path = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
        return self._upstream(f"{parts.scheme}://{parts.netloc}/"), path

    def api_json(self, path: str) -> dict:
        """``GET path`` under the API root, fetched once for all checks (its failure too)."""
        return self._once(f"api:{path}", lambda: self.api.get_json(path))

    def server_json(self, path: str) -> dict:
        return self._once(f"server:{path}", lambda: self.server.get_json(path))

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header of the check's user (a basic login happens once); raises
        CredentialsNotGiven, or the login's UpstreamError."""
        if not self.credentials.given():
            raise CredentialsNotGiven()
        return self._once("auth", self._login)

    def _login(self) -> dict[str, str]:
        if self.credentials.token:
            return {"Authorization": f"Bearer {self.credentials.token}"}
        pair = f"{self.credentials.username}:{self.credentials.password}".encode()
        document = self.api.get_json("credentials/basic",
                                     headers={"Authorization": "Basic " + base64.b64encode(pair).decode()})
        token = document.get("access_token")
        if not isinstance(token, str) or not token:
            raise BackendResponseInvalid(self.config.id, "GET /credentials/basic: no access_token in the answer")
        return {"Authorization": f"Bearer basic//{token}"}

    def _once(self, key: str, fetch):
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._memo:
                try:
                    self._memo[key] = (True, fetch())
                except Exception as exc:  # remembered: every check reading it reports the same failure
                    self._memo[key] = (False, exc)
            ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self.api.close()
        self.server.close()
