"""Parsing of openEO bearer tokens: ``Bearer basic//<token>`` and ``Bearer oidc/<provider>/<token>``."""

from __future__ import annotations

from dataclasses import dataclass

from apicore import errors


@dataclass(frozen=True)
class BearerToken:
    method: str  # "basic" or "oidc"
    provider: str  # "" for basic
    token: str


def parse_authorization(header: str | None) -> BearerToken | None:
    """None when no Authorization header; openEO errors for malformed ones."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise errors.AuthenticationSchemeInvalid(
            "Send 'Authorization: Bearer basic//<token>' (from GET /credentials/basic) or "
            "'Bearer oidc/<provider id>/<access token>'.")
    method, _, rest = value.strip().partition("/")
    provider, _, token = rest.partition("/")
    if method == "basic" and provider == "" and token:
        return BearerToken("basic", "", token)
    if method == "oidc" and provider and token:
        return BearerToken("oidc", provider, token)
    raise errors.TokenInvalid(
        "Malformed bearer token: expected 'basic//<token>' or 'oidc/<provider id>/<access token>'.")
