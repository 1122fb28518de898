"""The aggregator's basic-auth access token: a signed (HS256), expiring JWT that carries the backends'
own tokens for this user, so any web worker (and any aggregator process after a restart) can use it
without a session store.

Claims: ``sub`` (the aggregator's user id), ``iat``, ``exp``, ``aud`` (``openeo-aggregator/basic``),
``bt`` ({backend id: {"u": that backend's URL at login, "t": its access token}}) and ``bf`` ({backend
id: why the login there failed}). The token is signed, not encrypted: whoever holds it can read the
backend tokens inside, but they are tokens of the same user for the same session, which the holder
can use through the aggregator anyway; nothing is revealed that the bearer could not already do.
They must therefore be treated like the token itself (never logged). The URL binds a backend token to
the backend it came from: if an id is later given to another URL, that token is not sent there.

The signing key is derived from the aggregator's secret key for this purpose alone, so a signature made
for anything else with the same secret is worthless here.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field

import jwt

from apicore import errors

AUDIENCE = "openeo-aggregator/basic"


@dataclass(frozen=True)
class FederationToken:
    user_id: str
    backend_tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> {"u": url, "t": token}
    failures: dict[str, str] = field(default_factory=dict)  # id -> reason
    expires: int = 0  # unix time


class FederationTokenSigner:
    def __init__(self, secret: str, ttl_seconds: int):
        self._key = hmac.new(secret.encode(), b"openeo-aggregator basic access tokens", hashlib.sha256).digest()
        self.ttl = ttl_seconds

    def issue(self, user_id: str, backend_tokens: dict[str, dict[str, str]], failures: dict[str, str],
              not_after: float | None = None) -> tuple[str, int]:
        """The token and its lifetime in seconds: the aggregator's ttl, shortened to ``not_after`` (the
        earliest expiry of the backend tokens inside)."""
        now = int(time.time())
        expires = now + self.ttl
        if not_after is not None:
            expires = max(now, min(expires, int(not_after)))
        claims = {"sub": user_id, "iat": now, "exp": expires, "aud": AUDIENCE, "bt": backend_tokens,
                  "bf": failures}
        return jwt.encode(claims, self._key, algorithm="HS256"), expires - now

    def decode(self, token: str) -> FederationToken:
        """The token's contents; 401 TokenInvalid when the signature, audience or expiry fails."""
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], audience=AUDIENCE,
                                options={"require": ["sub", "exp", "aud"]})
        except jwt.ExpiredSignatureError:
            raise errors.TokenInvalid("The access token has expired: log in again (GET /credentials/basic).") from None
        except jwt.PyJWTError:
            raise errors.TokenInvalid("The access token is invalid: log in again (GET /credentials/basic).") from None
        tokens = claims.get("bt") if isinstance(claims.get("bt"), dict) else {}
        failures = claims.get("bf") if isinstance(claims.get("bf"), dict) else {}
        return FederationToken(str(claims["sub"]), tokens, failures, int(claims["exp"]))

    @staticmethod
    def is_federation_token(token: str) -> bool:
        """Whether a raw JWT looks like one of ours (by its audience; its signature is checked by decode)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return claims.get("aud") == AUDIENCE
