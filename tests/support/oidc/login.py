"""A user's login at the test provider: the authorization-code grant with PKCE, as a browser does it.

Drives Canaille's web pages with a plain ``requests`` session: the login form (user
name, then password) and, if shown, the consent page, until the provider redirects
to the client's redirect URI with the code.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urljoin, urlparse

import requests

from .errors import OidcTestServerError, snippet

if TYPE_CHECKING:
    from .client import OidcTestServer

MAX_PAGES = 20  # redirects and form posts of one login


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    return verifier, challenge


def authorization_code(
    server: OidcTestServer, username: str, password: str, scope: str
) -> tuple[str, str]:
    """Log ``username`` in; return (authorization code, PKCE code_verifier) to redeem it."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(12)
    params = {
        "response_type": "code",
        "client_id": server.client_id,
        "redirect_uri": server.redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    query = _follow_login_pages(server, params, username, password)
    if "error" in query:
        raise OidcTestServerError(f"authorization refused: {query}")
    if query.get("state") != [state]:
        raise OidcTestServerError(f"state mismatch in redirect: {query}")
    return query["code"][0], verifier


def _follow_login_pages(
    server: OidcTestServer, params: dict[str, str], username: str, password: str
) -> dict[str, list[str]]:
    """Follow redirects and fill each known form once; the query of the redirect to the client."""
    forms = {
        "/login": {"login": username},
        "/auth/password": {"password": password},
        "/oauth/authorize": {"answer": "accept"},  # consent page, if any
    }
    posted: set[str] = set()
    timeout = server.timeout
    with requests.Session() as session:
        resp = session.get(
            server.authorization_endpoint, params=params, allow_redirects=False, timeout=timeout
        )
        for _ in range(MAX_PAGES):
            if resp.is_redirect:
                location = urljoin(resp.url, resp.headers["Location"])
                if location.startswith(server.redirect_uri):
                    return parse_qs(urlparse(location).query)
                resp = session.get(location, allow_redirects=False, timeout=timeout)
                continue
            path = urlparse(resp.url).path
            if resp.status_code != 200 or path not in forms or path in posted:
                raise OidcTestServerError(
                    f"authorization-code login for {username!r} got stuck at "
                    f"{resp.request.method} {resp.url} -> {resp.status_code}"
                    f" (wrong password? user locked?)\n{snippet(resp)}"
                )
            posted.add(path)
            resp = session.post(resp.url, data=forms[path], allow_redirects=False, timeout=timeout)
    raise OidcTestServerError(f"too many redirects logging in {username!r}")  # pragma: no cover
