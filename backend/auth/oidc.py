"""Validation of OIDC access tokens (JWTs) against the provider's JWKS, cached: no round trip per request."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import jwt
import requests

from apicore import errors
from backend.settings import OidcProvider

log = logging.getLogger(__name__)

_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


@dataclass(frozen=True)
class OidcIdentity:
    provider: str
    subject: str
    name: str | None


class ProviderKeys:
    """The discovery document and JWKS client of one provider, refreshed after ``ttl`` seconds."""

    def __init__(self, provider: OidcProvider, ttl: int):
        self.provider = provider
        self.ttl = ttl
        self._lock = threading.Lock()
        self._client: jwt.PyJWKClient | None = None
        self._fetched = 0.0

    def signing_key(self, token: str):
        client = self._jwks_client()
        try:
            return client.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("JWKS of OIDC provider %s unreachable: %s", self.provider.id, exc)
            raise errors.InfrastructureBusy(
                f"The identity provider '{self.provider.id}' cannot be reached to check the token; "
                "try again later.") from None

    def _jwks_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None or time.monotonic() - self._fetched > self.ttl:
                jwks_uri = self._discover_jwks_uri()
                # PyJWKClient caches the key set and refetches only for an unknown key id.
                self._client = jwt.PyJWKClient(jwks_uri, cache_jwk_set=True, lifespan=self.ttl, timeout=10)
                self._fetched = time.monotonic()
            return self._client

    def _discover_jwks_uri(self) -> str:
        url = self.provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=10)
            response.raise_for_status()
            return response.json()["jwks_uri"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            log.warning("discovery of OIDC provider %s failed: %s", self.provider.id, exc)
            raise errors.InfrastructureBusy(
                f"The identity provider '{self.provider.id}' cannot be reached to check the token; "
                "try again later.") from None


class OidcValidator:
    def __init__(self, providers: list[OidcProvider], ttl: int):
        self._keys = {p.id: ProviderKeys(p, ttl) for p in providers}

    def validate(self, provider_id: str, token: str) -> OidcIdentity:
        keys = self._keys.get(provider_id)
        if keys is None:
            raise errors.TokenInvalid(f"Unknown OIDC provider '{provider_id}'; see GET /credentials/oidc.")
        provider = keys.provider
        try:
            # the audience is checked below: PyJWT knows `aud` only, providers such as Keycloak name the
            # client in `azp`
            claims = jwt.decode(
                token, keys.signing_key(token), algorithms=_ALGORITHMS, issuer=provider.issuer, leeway=30,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise errors.TokenInvalid("The OIDC access token has expired: refresh it or log in again.") from None
        except jwt.PyJWTError as exc:
            raise errors.TokenInvalid(f"The OIDC access token is not valid for provider '{provider_id}': "
                                      f"{str(exc).rstrip('.')}. Log in again for a valid token "
                                      "(providers: GET /credentials/oidc).") from None
        _check_audience(provider, claims)
        subject = str(claims["sub"])
        if (why := _unstorable(subject)) is not None:
            raise errors.TokenInvalid(f"The OIDC access token's subject (`sub`) {why}: this service cannot keep an "
                                      f"account for it. Log in again with another account of provider "
                                      f"'{provider_id}', or ask its operator (providers: GET /credentials/oidc).")
        names = (claims.get(claim) for claim in ("preferred_username", "name", "client_id"))
        name = next((n for n in names if isinstance(n, str) and n and _unstorable(n) is None), None)
        return OidcIdentity(provider_id, subject, name)


# A user is stored as "<provider id>:<display name or subject>" in a 255-character column (provider ids up to
# 64): longer values, NUL and other control characters would be a 500 on PostgreSQL (refused there, kept by
# SQLite) and garble the name shown to operators.
MAX_IDENTITY_CHARS = 190


def _unstorable(value: str) -> str | None:
    """Why a subject or display name cannot be stored, or None."""
    if not value:
        return "is empty"
    if len(value) > MAX_IDENTITY_CHARS:
        return f"is longer than {MAX_IDENTITY_CHARS} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "holds a control character"
    return None


def _check_audience(provider: OidcProvider, claims: dict) -> None:
    """401 TokenInvalid unless the token was issued for this service: its `aud` holds, or its `azp` is, one of
    the provider's accepted audiences (its `audience` setting, else its default clients' ids)."""
    accepted = provider.accepted_audiences
    if accepted is None:  # audience "*": the operator chose not to check
        return
    aud = claims.get("aud")
    audiences = [a for a in ([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else [])
                 if isinstance(a, str)]
    azp = claims.get("azp")
    if accepted.intersection(audiences) or (isinstance(azp, str) and azp in accepted):
        return
    issued_for = "audience " + ", ".join(repr(a) for a in audiences) if audiences else "no audience"
    raise errors.TokenInvalid(
        f"The OIDC access token was issued for {issued_for}, not for this service: log in again through one of "
        f"the clients this service accepts for provider '{provider.id}' (its default clients are listed by "
        "GET /credentials/oidc).")
