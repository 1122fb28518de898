"""Who is calling: resolves the Authorization header to a User (basic token or OIDC token)."""

from __future__ import annotations

from apicore import errors
from apicore.bearer import parse_authorization
from backend.auth.basic_tokens import BasicTokenSigner
from backend.auth.oidc import OidcValidator
from backend.storage.models import User
from backend.storage.users import IdentityRemoved, UserStore


class Authenticator:
    def __init__(self, users: UserStore, basic: BasicTokenSigner, oidc: OidcValidator):
        self.users = users
        self.basic = basic
        self.oidc = oidc

    def user_from_header(self, header: str | None) -> User | None:
        """None without a header; the user, or an openEO error for an invalid token."""
        bearer = parse_authorization(header)
        if bearer is None:
            return None
        if bearer.method == "basic":
            user = self.users.get(self.basic.user_id(bearer.token))
            if user is None:
                raise errors.TokenInvalid("The account of this token no longer exists.")
            return user
        identity = self.oidc.validate(bearer.provider, bearer.token)
        try:
            return self.users.get_or_create_oidc(identity.provider, identity.subject, identity.name)
        except IdentityRemoved:
            raise errors.TokenInvalid(REMOVED) from None


# Said to the holder of a valid token whose account an operator removed.
REMOVED = ("The account of this identity was removed by the operator of this service: its tokens are no longer "
           "accepted. Contact the operator to have it restored.")
