"""``FederationAuth``: the Authorization header → a ``FederatedCaller``; basic login; the OIDC listing.

Accepted forms: ``Bearer basic//<aggregator token>`` (from ``GET /credentials/basic``),
``Bearer oidc/<provider id>/<access token>`` (one of the aggregator's ``oidc_providers``), and the raw
JWT ``Bearer <access token>`` (its issuer picks the provider; our own basic token is recognised too).
No per-user state lives in this object: a caller's credentials are built per request from the token.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aggregator.auth.basic import BasicExchangeCredentials, exchange
from aggregator.auth.caller import FederatedCaller
from aggregator.auth.directory import BackendAuthDirectory
from aggregator.auth.oidc import FederationOidc, OidcPassThrough
from aggregator.auth.tokens import FederationTokenSigner
from apicore import errors
from apicore.bearer import parse_authorization
from backend.auth.authenticate import REMOVED
from backend.storage.users import IdentityRemoved, UserStore

if TYPE_CHECKING:
    from aggregator.federation.wiring import Federation

log = logging.getLogger(__name__)


class FederationAuth:
    def __init__(self, users: UserStore, signer: FederationTokenSigner, oidc: FederationOidc,
                 directory: BackendAuthDirectory, federation: "Federation", login_deadline: float):
        self.users = users
        self.signer = signer
        self.oidc = oidc
        self.directory = directory
        self.federation = federation
        self.login_deadline = login_deadline

    def authenticate(self, header: str | None) -> FederatedCaller | None:
        """None without a header; the caller, or an openEO error (401 TokenInvalid, ...) for a bad token."""
        bearer = parse_authorization(header, allow_jwt=True)
        if bearer is None:
            return None
        if bearer.method == "basic" or (bearer.method == "jwt" and self.signer.is_federation_token(bearer.token)):
            return self._basic_caller(bearer.token)
        if bearer.method == "oidc":
            identity, issuer = self.oidc.validate(bearer.provider, bearer.token)
        else:
            identity, issuer = self.oidc.validate_raw(bearer.token)
        try:
            user = self.users.get_or_create_oidc(identity.provider, identity.subject, identity.name)
        except IdentityRemoved:
            raise errors.TokenInvalid(REMOVED) from None
        return FederatedCaller(user.user_id, user.name, OidcPassThrough(bearer.token, issuer, self.directory))

    def _basic_caller(self, token: str) -> FederatedCaller:
        contents = self.signer.decode(token)
        user = self.users.get(contents.user_id)
        if user is None:
            raise errors.TokenInvalid("The account of this token no longer exists.")
        return FederatedCaller(user.user_id, user.name, BasicExchangeCredentials(contents, self.federation.registry))

    def basic_login(self, name: str, password: str) -> dict:
        """``GET /credentials/basic``: 403 CredentialsInvalid for a wrong password; else the aggregator's
        token, carrying the tokens of every backend where the same credentials worked (the others are
        listed in ``federation:missing``)."""
        user = self.users.check_password(name, password)
        if user is None:
            raise errors.CredentialsInvalid("Wrong user name or password.")
        outcome = exchange(self.federation, name, password, self.login_deadline)
        if outcome.failures:
            log.info("basic login of %s: no token from %s", name, ", ".join(sorted(outcome.failures)))
        token, expires_in = self.signer.issue(user.user_id, outcome.tokens, outcome.failures, outcome.not_after)
        answer: dict = {"access_token": token, "expires_in": expires_in}
        if outcome.failures:
            answer["federation:missing"] = sorted(outcome.failures)
        return answer

    def oidc_providers(self) -> list[dict]:
        """``GET /credentials/oidc``'s providers (the audience is the aggregator's business only)."""
        return [provider.model_dump(exclude={"audience"}, exclude_none=True)
                for provider in self.oidc.providers.values()]
