"""OIDC at the aggregator: tokens validated against the aggregator's own providers (the backend's
``OidcValidator``, JWKS cached), then passed through to every backend that trusts the same issuer, as
``Bearer oidc/<that backend's provider id>/<token>``, or as the raw JWT to a backend declaring the
openEO API 1.3 JWT conformance class."""

from __future__ import annotations

import jwt

from aggregator.auth.caller import Resolution
from aggregator.auth.directory import AuthInfoUnavailable, BackendAuthDirectory, UnknownBackend, normalise_issuer
from apicore import errors
from backend.auth.oidc import OidcIdentity, OidcValidator
from backend.settings import OidcProvider


class FederationOidc:
    """The aggregator's providers; validates prefixed (``oidc/<provider>/<token>``) and raw JWTs."""

    def __init__(self, providers: list[OidcProvider], jwks_ttl: int):
        self.providers = {provider.id: provider for provider in providers}
        self._by_issuer = {}
        for provider in providers:
            self._by_issuer.setdefault(normalise_issuer(provider.issuer), provider)
        self._validator = OidcValidator(providers, jwks_ttl)

    def validate(self, provider_id: str, token: str) -> tuple[OidcIdentity, str]:
        """The identity and the issuer of a token sent for one of our providers (401 TokenInvalid)."""
        identity = self._validator.validate(provider_id, token)
        return identity, self.providers[provider_id].issuer

    def validate_raw(self, token: str) -> tuple[OidcIdentity, str]:
        """A raw JWT: its issuer (read from the token) picks the provider, which then validates it."""
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise errors.TokenInvalid("The bearer token is not a valid JWT: log in again for a valid access token "
                                      "(providers: GET /credentials/oidc; or GET /credentials/basic).") from None
        provider = self._by_issuer.get(normalise_issuer(issuer)) if isinstance(issuer, str) else None
        if provider is None:
            trusted = ", ".join(sorted(p.issuer for p in self.providers.values())) or "none"
            raise errors.TokenInvalid(f"The token's issuer {issuer!r} is not one this federation trusts "
                                      f"(trusted: {trusted}); see GET /credentials/oidc.")
        return self.validate(provider.id, token)


class OidcPassThrough:
    """The caller's own access token, sent to each backend in the form that backend accepts; immutable."""

    def __init__(self, token: str, issuer: str, directory: BackendAuthDirectory):
        self.token = token
        self.issuer = issuer
        self.directory = directory

    def resolve(self, backend_id: str) -> Resolution:
        try:
            info = self.directory.info(backend_id)
        except UnknownBackend:
            return Resolution(None, f"backend '{backend_id}' is not part of the federation")
        except AuthInfoUnavailable as failure:
            return Resolution(None, f"the OIDC providers of backend '{backend_id}' could not be read "
                                    f"({failure.reason})")
        provider_id = info.provider_for(self.issuer)
        if provider_id is None:
            return Resolution(None, f"backend '{backend_id}' does not trust issuer {self.issuer}")
        if info.raw_jwt:
            return Resolution({"Authorization": f"Bearer {self.token}"})
        return Resolution({"Authorization": f"Bearer oidc/{provider_id}/{self.token}"})
