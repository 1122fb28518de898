"""What the test provider changes in Canaille's OAuth authorization server (Authlib).

* every access token becomes a JWT in the RFC 9068 profile, signed with the key published
  at ``jwks_uri``: Canaille 0.3.6 issues a random opaque string for ``client_credentials``
  and has no setting to change that, so the token generator is replaced through Authlib's
  public ``AuthorizationServer.register_token_generator`` hook;
* the client-credentials grant accepts ``client_secret_post`` (what the openEO Python
  client sends).

Imports Canaille: only needed where the server runs.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2 import rfc6749
from canaille.oidc.provider import BearerTokenGenerator, authorization
from canaille.oidc.userinfo import UserInfo, generate_user_claims
from joserfc import jwt

from .errors import OidcTestServerError


def install_jwt_access_tokens(issuer: str, signing_key: Any, lifetime: int) -> None:
    """Make Canaille issue RFC 9068 JWT access tokens for every grant."""
    header = {"alg": "RS256", "typ": "at+jwt", "kid": signing_key.kid}

    def access_token(client, grant_type, user, scope):
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": generate_token(24),
            "client_id": client.client_id,
            "aud": client.client_id,
            "scope": scope or "",
            # RFC 9068: without a resource owner, ``sub`` names the client.
            "sub": client.client_id,
            "grant_type": grant_type,
        }
        if user is not None:
            # Same claims as Canaille's ID token / userinfo (sub = user name).
            claims.update(UserInfo(generate_user_claims(user)).filter(scope or ""))
            claims["sub"] = user.user_name
        return jwt.encode(header, claims, signing_key)

    def refresh_token(client, grant_type, user, scope):
        return generate_token(48)

    # Canaille's BearerTokenGenerator subclass carries its default-scope fix.
    generator = BearerTokenGenerator(access_token, refresh_token, lambda c, g: lifetime)
    authorization.register_token_generator("default", generator)


def allow_client_secret_post_for_client_credentials() -> None:
    """Let the client-credentials grant accept ``client_secret_post``.

    Canaille registers Authlib's stock ``ClientCredentialsGrant``, which only
    accepts ``client_secret_basic``, while a Canaille client accepts exactly one
    method (its ``token_endpoint_auth_method``).  The openEO Python client sends
    the secret in the form body (``client_secret_post``), so the stock grant is
    swapped, in place, for a subclass that allows both; our client is registered
    with ``client_secret_post``, so HTTP Basic is refused for it (all grants).
    """

    class ClientCredentialsGrant(rfc6749.ClientCredentialsGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    grants = authorization._token_grants  # no public API to replace a grant
    for i, (grant_cls, extensions) in enumerate(grants):
        if grant_cls is rfc6749.ClientCredentialsGrant:
            grants[i] = (ClientCredentialsGrant, extensions)
            return
    raise OidcTestServerError(
        "Canaille no longer registers authlib's ClientCredentialsGrant; "
        "update allow_client_secret_post_for_client_credentials()"
    )
