"""A real OpenID Connect provider on localhost, for tests.

The provider is Canaille (https://canaille.readthedocs.io), the identity server that
``pytest-iam`` wraps, run with an in-memory database and one RSA signing key made
at start-up.  On top of Canaille this module:

* registers one confidential client that may use the ``authorization_code``,
  ``refresh_token`` and ``client_credentials`` grants (client authentication:
  ``client_secret_post``, which is what the openEO Python client sends);
* makes every access token a JWT in the RFC 9068 profile, signed with the key
  published at ``jwks_uri``.  Canaille 0.3.6 issues a random opaque string for
  ``client_credentials`` and has no setting to change that, so the server's
  token generator is replaced through Authlib's public
  ``AuthorizationServer.register_token_generator`` hook;
* adds a small test-only route ``POST /_testing/users`` that creates (or resets the
  password of) a user, so that tests in another process can have users.

Use it from tests::

    with start_oidc_server() as oidc:          # or the ``oidc_server`` fixture
        token = oidc.client_credentials_token()
        tokens = oidc.user_token("alice")      # real login form, authorization code
        fresh = oidc.refresh(tokens["refresh_token"])

or as a separate process (e.g. for the conformance runner)::

    python tests/support/oidc_server.py --port 8555
    python -m tests.support.oidc_server --port 8555   # needs tests/__init__.py

which prints one JSON line (issuer, client_id, client_secret, ...) on stdout and
serves until it is killed.

Only one server can run *inside* a given process (``in_process=True``): Canaille
keeps its authorization server and database backend in module globals.  The default
mode runs the server in a child process, which has no such limit.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import requests

__all__ = [
    "OidcTestServer",
    "OidcTestServerError",
    "start_oidc_server",
    "oidc_server",
]

HOST = "127.0.0.1"
DEFAULT_CLIENT_ID = "openeo-test-client"
DEFAULT_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]
DEFAULT_ACCESS_TOKEN_LIFETIME = 3600
STARTUP_TIMEOUT = 60.0
USERS_ROUTE = "/_testing/users"
CALLBACK_PATH = "/_testing/callback"

_THIS_FILE = Path(__file__).resolve()


class OidcTestServerError(RuntimeError):
    """The test provider failed to start or refused a request."""


def _default_password(username: str) -> str:
    return f"{username}-Test-Password-1"


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

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth/token"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/oauth/authorize"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/oauth/jwks.json"

    @property
    def userinfo_endpoint(self) -> str:
        return f"{self.issuer}/oauth/userinfo"

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
        _raise_for(resp, "discovery document")
        return resp.json()

    def jwks(self) -> dict[str, Any]:
        resp = requests.get(self.jwks_uri, timeout=self.timeout)
        _raise_for(resp, "JWKS")
        return resp.json()

    def _token_request(self, data: dict[str, str], what: str) -> dict[str, Any]:
        data = {**data, "client_id": self.client_id, "client_secret": self.client_secret}
        resp = requests.post(self.token_endpoint, data=data, timeout=self.timeout)
        _raise_for(resp, what)
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
        password = password or _default_password(username)
        payload = {"username": username, "password": password, "email": email, "name": name}
        resp = requests.post(self.issuer + USERS_ROUTE, json=payload, timeout=self.timeout)
        _raise_for(resp, f"creating user {username!r}")
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
            password = _default_password(username)

        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        state = secrets.token_urlsafe(12)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": secrets.token_urlsafe(12),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        forms = {
            "/login": {"login": username},
            "/auth/password": {"password": password},
            "/oauth/authorize": {"answer": "accept"},  # consent page, if any
        }
        posted: set[str] = set()
        with requests.Session() as session:
            resp = session.get(
                self.authorization_endpoint,
                params=params,
                allow_redirects=False,
                timeout=self.timeout,
            )
            for _ in range(20):
                if resp.is_redirect:
                    location = urljoin(resp.url, resp.headers["Location"])
                    if location.startswith(self.redirect_uri):
                        query = parse_qs(urlparse(location).query)
                        break
                    resp = session.get(location, allow_redirects=False, timeout=self.timeout)
                    continue
                path = urlparse(resp.url).path
                if resp.status_code != 200 or path not in forms or path in posted:
                    raise OidcTestServerError(
                        f"authorization-code login for {username!r} got stuck at "
                        f"{resp.request.method} {resp.url} -> {resp.status_code}"
                        f" (wrong password? user locked?)\n{_snippet(resp)}"
                    )
                posted.add(path)
                resp = session.post(
                    resp.url, data=forms[path], allow_redirects=False, timeout=self.timeout
                )
            else:  # pragma: no cover - defensive
                raise OidcTestServerError(f"too many redirects logging in {username!r}")

        if "error" in query:
            raise OidcTestServerError(f"authorization refused: {query}")
        if query.get("state") != [state]:
            raise OidcTestServerError(f"state mismatch in redirect: {query}")
        return self._token_request(
            {
                "grant_type": "authorization_code",
                "code": query["code"][0],
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
        _raise_for(resp, "userinfo request")
        return resp.json()


def _snippet(resp: requests.Response, limit: int = 800) -> str:
    return resp.text[:limit]


def _raise_for(resp: requests.Response, what: str) -> None:
    if resp.status_code >= 400:
        raise OidcTestServerError(f"{what} failed: {resp.status_code} {_snippet(resp)}")


# ---------------------------------------------------------------------------
# The server side (imports Canaille; only needed where the server runs)
# ---------------------------------------------------------------------------


def _canaille_config(port: int, rsa_jwk: dict, verbose: bool) -> dict[str, Any]:
    handler = (
        {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "default"}
        if verbose
        else {"class": "logging.NullHandler"}
    )
    return {
        # TESTING keeps Canaille's optional SQL/SCIM/Hypercorn settings off.
        "TESTING": True,
        "SECRET_KEY": secrets.token_hex(32),
        "WTF_CSRF_ENABLED": False,
        "PREFERRED_URL_SCHEME": "http",
        # Canaille builds the issuer from SERVER_NAME, and redirects (GET) or
        # refuses (POST) requests that are sent to any other host name.
        "SERVER_NAME": f"{HOST}:{port}",
        "CANAILLE": {
            "NAME": "openEO test identity provider",
            "DATABASE": "memory",
            "JAVASCRIPT": False,
            "HTMX": False,
            "CAPTCHA_ENABLED": False,
            "ENABLE_PASSWORD_RECOVERY": False,
            "ACL": {"DEFAULT": {"PERMISSIONS": ["edit_self", "use_oidc"]}},
            # A dict here makes Canaille use dictConfig on its own logger only,
            # instead of changing the root logger's level.
            "LOGGING": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"default": {"format": "[oidc-test-server] %(levelname)s %(message)s"}},
                "handlers": {"canaille": handler},
                "loggers": {
                    "canaille": {
                        "level": "DEBUG" if verbose else "WARNING",
                        "handlers": ["canaille"],
                        "propagate": False,
                    }
                },
            },
        },
        "CANAILLE_OIDC": {
            "ACTIVE_JWKS": [rsa_jwk],
            "DYNAMIC_CLIENT_REGISTRATION_OPEN": False,
        },
    }


def _install_jwt_access_tokens(issuer: str, signing_key: Any, lifetime: int) -> None:
    """Make Canaille issue RFC 9068 JWT access tokens for every grant."""
    from authlib.common.security import generate_token
    from canaille.oidc.provider import BearerTokenGenerator, authorization
    from canaille.oidc.userinfo import UserInfo, generate_user_claims
    from joserfc import jwt

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


def _allow_client_secret_post_for_client_credentials() -> None:
    """Let the client-credentials grant accept ``client_secret_post``.

    Canaille registers Authlib's stock ``ClientCredentialsGrant``, which only
    accepts ``client_secret_basic``, while a Canaille client accepts exactly one
    method (its ``token_endpoint_auth_method``).  The openEO Python client sends
    the secret in the form body (``client_secret_post``), so the stock grant is
    swapped, in place, for a subclass that allows both; our client is registered
    with ``client_secret_post``, so HTTP Basic is refused for it (all grants).
    """
    from authlib.oauth2 import rfc6749
    from canaille.oidc.provider import authorization

    class ClientCredentialsGrant(rfc6749.ClientCredentialsGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    grants = authorization._token_grants  # no public API to replace a grant
    for i, (grant_cls, extensions) in enumerate(grants):
        if grant_cls is rfc6749.ClientCredentialsGrant:
            grants[i] = (ClientCredentialsGrant, extensions)
            return
    raise OidcTestServerError(
        "Canaille no longer registers authlib's ClientCredentialsGrant; "
        "update _allow_client_secret_post_for_client_credentials()"
    )


def _add_testing_routes(app) -> None:
    from canaille.app import models
    from canaille.backends import Backend
    from flask import Blueprint, jsonify, request

    bp = Blueprint("oidc_testing", __name__)

    @bp.post(USERS_ROUTE)
    def upsert_user():
        data = request.get_json(force=True)
        username = data["username"]
        password = data["password"]
        name = data.get("name") or username.replace(".", " ").title()
        email = data.get("email") or f"{username}@example.org"
        user = Backend.instance.get(models.User, user_name=username)
        created = user is None
        if created:
            user = models.User(
                user_name=username,
                formatted_name=name,
                given_name=name.split(" ")[0],
                family_name=name.split(" ")[-1],
                display_name=username,
                emails=[email],
                password=password,
            )
            Backend.instance.save(user)
        else:
            Backend.instance.set_user_password(user, password)
        return jsonify({"username": username, "sub": username, "created": created})

    app.register_blueprint(bp)


class _Dispatcher:
    """WSGI app placeholder: lets the socket be bound before the app exists."""

    app: Any = None

    def __call__(self, environ, start_response):
        if self.app is None:  # a request that beats the end of the start-up
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return self.app(environ, start_response)


def _make_http_server(port: int, dispatcher: _Dispatcher, verbose: bool):
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Handler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            if verbose:
                super().log_request(*args, **kwargs)

    return make_server(HOST, port, dispatcher, threaded=True, request_handler=Handler)


def _build_server(
    port: int = 0,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str | None = None,
    access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
    verbose: bool = False,
):
    """Bind the socket and build the Canaille app; returns (http_server, info)."""
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on localhost

    dispatcher = _Dispatcher()
    httpd = _make_http_server(port, dispatcher, verbose)
    try:
        dispatcher.app, info = _build_app(
            httpd.server_port,
            client_id=client_id,
            client_secret=client_secret or secrets.token_urlsafe(32),
            access_token_lifetime=access_token_lifetime,
            verbose=verbose,
        )
    except BaseException:
        httpd.server_close()
        raise
    return httpd, info


def _build_app(
    port: int,
    *,
    client_id: str,
    client_secret: str,
    access_token_lifetime: int,
    verbose: bool,
):
    import datetime

    from canaille import create_app
    from canaille.app import models
    from canaille.backends import Backend
    from joserfc.jwk import RSAKey

    issuer = f"http://{HOST}:{port}"
    redirect_uri = issuer + CALLBACK_PATH
    key = RSAKey.generate_key(2048, auto_kid=True)
    app = create_app(
        config=_canaille_config(port, key.as_dict(private=True), verbose),
        env_prefix="OIDC_TEST_SERVER_CANAILLE_",
    )
    _install_jwt_access_tokens(issuer, key, access_token_lifetime)
    _allow_client_secret_post_for_client_credentials()
    _add_testing_routes(app)

    with app.app_context():
        client = models.Client(
            client_id=client_id,
            client_secret=client_secret,
            client_id_issued_at=datetime.datetime.now(datetime.timezone.utc),
            client_name="openEO test client",
            # a client_uri in TRUSTED_DOMAINS (127.0.0.1) skips the consent page
            client_uri=issuer,
            redirect_uris=[redirect_uri],
            post_logout_redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            response_types=["code"],
            scope=DEFAULT_SCOPES,
            token_endpoint_auth_method="client_secret_post",
            # Canaille's model default is not applied here; without it the ID
            # token is signed with the "most secure" RSA algorithm, RS512.
            id_token_signed_response_alg="RS256",
        )
        Backend.instance.save(client)
        client.audience = [client]
        Backend.instance.save(client)

    info = OidcTestServer(
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        pid=os.getpid(),
    )
    return app, info


# ---------------------------------------------------------------------------
# Starting it: in this process (thread) or in a child process
# ---------------------------------------------------------------------------

_in_process_lock = threading.Lock()


@contextlib.contextmanager
def _start_in_process(port: int | None, **kwargs) -> Iterator[OidcTestServer]:
    if not _in_process_lock.acquire(blocking=False):
        raise OidcTestServerError(
            "an in-process OIDC test server is already running in this process "
            "(Canaille keeps global state); use in_process=False"
        )
    try:
        httpd, info = _build_server(port or 0, **kwargs)
        thread = threading.Thread(
            target=httpd.serve_forever, name="oidc-test-server", daemon=True
        )
        thread.start()
        try:
            yield info
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(10)
    finally:
        _in_process_lock.release()


def _read_first_line(proc: subprocess.Popen, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


@contextlib.contextmanager
def _start_subprocess(
    port: int | None,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str | None = None,
    access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
    verbose: bool = False,
) -> Iterator[OidcTestServer]:
    # Run the file by path, not with ``-m tests.support...``: Canaille's wheel
    # installs a top-level ``tests`` package that can shadow the project's.
    cmd = [
        sys.executable,
        str(_THIS_FILE),
        "--port",
        str(port or 0),
        "--client-id",
        client_id,
        "--access-token-lifetime",
        str(access_token_lifetime),
        "--exit-with-parent",
    ]
    if client_secret:
        cmd += ["--client-secret", client_secret]
    if verbose:
        cmd.append("--verbose")
    log = tempfile.TemporaryFile(mode="w+", prefix="oidc-test-server-")
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=None if verbose else log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = _read_first_line(proc, STARTUP_TIMEOUT)
        if not line.strip():
            proc.kill()
            proc.wait(10)
            log.seek(0)
            raise OidcTestServerError(
                f"OIDC test server did not start (exit code {proc.returncode}):\n"
                f"{log.read()[-4000:]}"
            )
        yield OidcTestServer.from_dict(json.loads(line))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        proc.stdout.close()
        log.close()


@contextlib.contextmanager
def start_oidc_server(
    port: int | None = None,
    *,
    in_process: bool = False,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str | None = None,
    access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
    verbose: bool = False,
) -> Iterator[OidcTestServer]:
    """Start a real OIDC provider on ``127.0.0.1`` (free port if ``port`` is None).

    ``in_process=False`` (default) runs it in a child Python process;
    ``in_process=True`` runs it in a daemon thread of this process (at most one at
    a time; it sets ``AUTHLIB_INSECURE_TRANSPORT=1`` in this process's
    environment).  The client secret is random unless given.
    """
    starter = _start_in_process if in_process else _start_subprocess
    with starter(
        port,
        client_id=client_id,
        client_secret=client_secret,
        access_token_lifetime=access_token_lifetime,
        verbose=verbose,
    ) as server:
        yield server


try:
    # The command line (``__main__``) needs no pytest, and starts ~0.15 s faster.
    pytest = None if __name__ == "__main__" else __import__("pytest")
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def oidc_server() -> Iterator[OidcTestServer]:
        """Session-wide OIDC provider (child process) on a free localhost port."""
        with start_oidc_server() as server:
            yield server


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a local OIDC provider (Canaille) for openEO backend tests. "
        "Prints one JSON line (issuer, client_id, client_secret, ...) on stdout, "
        "then serves until killed."
    )
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=None, help="default: random")
    parser.add_argument(
        "--access-token-lifetime", type=int, default=DEFAULT_ACCESS_TOKEN_LIFETIME
    )
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME[:PASSWORD]",
        help="create this user at start-up (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    parser.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    httpd, info = _build_server(
        args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        access_token_lifetime=args.access_token_lifetime,
        verbose=args.verbose,
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    users = {}
    for spec in args.user:
        name, _, password = spec.partition(":")
        users[name] = info.create_user(name, password or None)
    print(json.dumps({**info.as_dict(), "users": users}), flush=True)
    try:
        while thread.is_alive():
            thread.join(1)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
