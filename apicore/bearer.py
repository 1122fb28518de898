"""Parsing of openEO bearer tokens: ``Bearer basic//<token>`` and ``Bearer oidc/<provider>/<token>``.

openEO API 1.3 adds a third form for servers that declare the ``…/authentication/jwt`` conformance
class: the raw JWT, ``Bearer <header>.<payload>.<signature>``. It is accepted only when the caller asks
for it (``allow_jwt=True``: the aggregator); the backend keeps refusing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apicore import errors

# Three base64url segments (the signature may be empty only for unsigned tokens, which nobody accepts
# later anyway); no "/" so it never collides with the "basic//" and "oidc/<provider>/" forms.
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class BearerToken:
    method: str  # "basic", "oidc", or "jwt" (raw JWT, only with allow_jwt)
    provider: str  # "" for basic and jwt
    token: str


def parse_authorization(header: str | None, *, allow_jwt: bool = False) -> BearerToken | None:
    """None when no Authorization header; openEO errors for malformed ones."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise errors.AuthenticationSchemeInvalid(
            "Send 'Authorization: Bearer basic//<token>' (from GET /credentials/basic) or "
            "'Bearer oidc/<provider id>/<access token>'.")
    value = value.strip()
    method, _, rest = value.partition("/")
    provider, _, token = rest.partition("/")
    if method == "basic" and provider == "" and token:
        return BearerToken("basic", "", token)
    if method == "oidc" and provider and token:
        return BearerToken("oidc", provider, token)
    if allow_jwt and _JWT.match(value):
        return BearerToken("jwt", "", value)
    expected = "'basic//<token>' or 'oidc/<provider id>/<access token>'"
    if allow_jwt:
        expected += " or a raw JWT access token"
    raise errors.TokenInvalid(f"Malformed bearer token: expected {expected}.")
