"""Basic login across the federation (the demo and small federations, where a user has the same name and
password on every backend): the aggregator checks the password against its own users, then exchanges the
same credentials at every available backend's ``GET /credentials/basic`` in parallel, within a short
deadline. Backends whose exchange failed (down, slow, a different password) are missing for this user
until the next login.

The user's password goes to every backend of the federation: use basic login only where all of them are
run by the same operator (OIDC passes tokens instead and needs no shared passwords).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt

from aggregator.auth.caller import Resolution
from aggregator.auth.tokens import FederationToken
from aggregator.federation.backends import BackendRegistry
from aggregator.federation.errors import BackendResponseInvalid
from aggregator.federation.upstream import Upstream

if TYPE_CHECKING:
    from aggregator.federation.wiring import Federation

MAX_REASON = 200  # characters of a failure kept in the token
MIN_LIFETIME = 60  # seconds: a backend token that expires sooner is not worth carrying


@dataclass
class Exchange:
    """The outcome of one login at the backends."""

    tokens: dict[str, dict[str, str]]  # id -> {"u": url, "t": token}
    failures: dict[str, str]  # id -> reason
    not_after: float | None  # earliest expiry of the tokens (unix time), None if none said


def basic_header(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def exchange(federation: "Federation", name: str, password: str, deadline: float) -> Exchange:
    """``GET /credentials/basic`` with the user's credentials at every active backend, in parallel."""
    header = {"Authorization": basic_header(name, password)}

    def login(upstream: Upstream) -> tuple[str, str, float | None]:
        document = upstream.get_json("credentials/basic", headers=header, timeout=deadline)
        token = document.get("access_token")
        if not isinstance(token, str) or not token:
            raise BackendResponseInvalid(upstream.id, "GET /credentials/basic: no access_token")
        return upstream.config.url, token, _expiry(token, document.get("expires_in"))

    answers = federation.fan_out(login, deadline=deadline)
    tokens: dict[str, dict[str, str]] = {}
    failures = {backend_id: error.message[:MAX_REASON] for backend_id, error in answers.failures.items()}
    expiries = []
    now = time.time()
    for backend_id, (url, token, expires) in answers.successes.items():
        if expires is not None and expires - now < MIN_LIFETIME:
            failures[backend_id] = "its access token expires at once"
            continue
        tokens[backend_id] = {"u": url, "t": token}
        if expires is not None:
            expiries.append(expires)
    return Exchange(tokens, failures, min(expiries, default=None))


def _expiry(token: str, expires_in: object) -> float | None:
    """When a backend's token expires: its ``exp`` claim if it is a JWT, else ``expires_in``, else unknown."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            return float(exp)
    except jwt.PyJWTError:
        pass
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
        return time.time() + float(expires_in)
    return None


class BasicExchangeCredentials:
    """The backend tokens carried in a federation token; immutable."""

    def __init__(self, token: FederationToken, registry: BackendRegistry):
        self.token = token
        self.registry = registry

    def resolve(self, backend_id: str) -> Resolution:
        config = self.registry.get(backend_id)
        if config is None:
            return Resolution(None, f"backend '{backend_id}' is not part of the federation")
        entry = self.token.backend_tokens.get(backend_id)
        again = "log in again (GET /credentials/basic)"
        if not isinstance(entry, dict) or not isinstance(entry.get("t"), str):
            failure = self.token.failures.get(backend_id)
            if failure:
                return Resolution(None, f"the login at backend '{backend_id}' failed when you logged in "
                                        f"({failure}); {again}")
            return Resolution(None, f"backend '{backend_id}' joined the federation after you logged in; {again}")
        if entry.get("u") != config.url:
            return Resolution(None, f"backend '{backend_id}' has a new URL since you logged in; {again}")
        return Resolution({"Authorization": f"Bearer basic//{entry['t']}"})
