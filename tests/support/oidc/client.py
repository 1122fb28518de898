"""The test side of the OIDC test provider: the handle tests get, and the names both sides share.

``OidcTestServer`` is plain data (it crosses the process boundary as one JSON line) plus
HTTP helpers for tokens, users and userinfo; it needs no Canaille.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import requests

from .errors import raise_for
from .login import authorization_code

HOST = "127.0.0.1"
DEFAULT_CLIENT_ID = "openeo-test-client"
DEFAULT_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]
DEFAULT_ACCESS_TOKEN_LIFETIME = 3600
USERS_ROUTE = "/_testing/users"
CALLBACK_PATH = "/_testing/callback"


def default_password(username: str) -> str:
    return f"{username}-Test-Password-1"


def _below_issuer(path: str) -> property:
    """A read-only attribute ``issuer + path``."""
    return property(lambda self: f"{self.issuer}{path}", doc=f"``{{issuer}}{path}``")


@dataclasses.dataclass
class OidcTestServer:
    """Handle on a running test provider (what the fixture yields)."""

    issuer: str
    """Exactly the ``iss`` of the tokens, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
    client_id: str
    """Confidential client with authorization_code, refresh_token and client_credentials."""
    client_secret: str
    redirect_uri: str = ""
    """Registered redirect URI of the client (never actually served)."""
    pid: int | None = None
    """Process id of the server (the current process for an in-process server)."""
    timeout: float = 30.0

    # Canaille's fixed paths below the issuer (not dataclass fields: no annotations)
    discovery_url = _below_issuer("/.well-known/openid-configuration")
    token_endpoint = _below_issuer("/oauth/token")
    authorization_endpoint = _below_issuer("/oauth/authorize")
    jwks_uri = _below_issuer("/oauth/jwks.json")
    userinfo_endpoint = _below_issuer("/oauth/userinfo")

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("timeout")
        data.update(
            discovery_url=self.discovery_url,
            token_endpoint=self.token_endpoint,
            jwks_uri=self.jwks_uri,
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OidcTestServer:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    # -- plain HTTP helpers -------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        resp = requests.get(self.discovery_url, timeout=self.timeout)
        raise_for(resp, "discovery document")
        return resp.json()

    def jwks(self) -> dict[str, Any]:
        resp = requests.get(self.jwks_uri, timeout=self.timeout)
        raise_for(resp, "JWKS")
        return resp.json()

    def _token_request(self, data: dict[str, str], what: str) -> dict[str, Any]:
        data = {**data, "client_id": self.client_id, "client_secret": self.client_secret}
        resp = requests.post(self.token_endpoint, data=data, timeout=self.timeout)
        raise_for(resp, what)
        return resp.json()

    def client_credentials_response(self, scope: str | None = "openid") -> dict[str, Any]:
        """Full token-endpoint response of a client-credentials grant."""
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        return self._token_request(data, "client_credentials token request")

    def client_credentials_token(self, scope: str | None = "openid") -> str:
        """A JWT access token for the client itself (``sub`` == ``client_id``)."""
        return self.client_credentials_response(scope)["access_token"]

    def create_user(
        self,
        username: str,
        password: str | None = None,
        *,
        email: str | None = None,
        name: str | None = None,
    ) -> str:
        """Create the user, or reset its password if it exists; return the password."""
        password = password or default_password(username)
        payload = {"username": username, "password": password, "email": email, "name": name}
        resp = requests.post(self.issuer + USERS_ROUTE, json=payload, timeout=self.timeout)
        raise_for(resp, f"creating user {username!r}")
        return password

    def user_token(
        self,
        username: str,
        password: str | None = None,
        *,
        scope: str = "openid profile email",
        create: bool = True,
    ) -> dict[str, Any]:
        """Tokens for a real user via the authorization-code grant (with PKCE).

        Drives Canaille's login form (user name, then password) and, if shown, the
        consent page, with a plain ``requests`` session, then redeems the code.
        With ``create=True`` the user is created first (or its password reset).
        Returns the token response: ``access_token``, ``refresh_token``,
        ``id_token``, ``expires_in``, ``scope``, ``token_type``.
        """
        if create:
            password = self.create_user(username, password)
        elif password is None:
            password = default_password(username)
        code, verifier = authorization_code(self, username, password, scope)
        return self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            },
            "authorization_code token request",
        )

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Redeem a refresh token (it is rotated: the response has a new one)."""
        return self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            "refresh_token token request",
        )

    def userinfo(self, access_token: str) -> dict[str, Any]:
        resp = requests.get(
            self.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=self.timeout,
        )
        raise_for(resp, "userinfo request")
        return resp.json()
