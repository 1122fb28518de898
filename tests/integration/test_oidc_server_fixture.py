"""The local OIDC provider for tests (tests/support/oidc_server.py) really works.

Checks values, not only status codes: discovery fields, JWT access tokens verified
against the published JWKS with PyJWT, user identity through the authorization-code
flow (real login form), refresh-token rotation, the openEO client's client-credentials
authenticator, the in-process mode and the stand-alone command.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests
from openeo.rest.auth.oidc import (
    OidcClientCredentialsAuthenticator,
    OidcClientInfo,
    OidcProviderInfo,
)

try:
    from tests.support import oidc_server as oidc_mod
except ImportError:
    # Without tests/__init__.py our `tests` is a namespace package, and the *regular*
    # package `tests` that canaille (via pytest-iam) installs into site-packages wins
    # over it. Load the helper by path instead.
    import importlib.util

    _path = Path(__file__).resolve().parents[1] / "support" / "oidc_server.py"
    _spec = importlib.util.spec_from_file_location("tests_support_oidc_server", _path)
    oidc_mod = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = oidc_mod
    _spec.loader.exec_module(oidc_mod)

# What a conftest.py does to offer the fixture:
oidc_server = oidc_mod.oidc_server

OidcTestServerError = oidc_mod.OidcTestServerError
HELPER = Path(oidc_mod.__file__).resolve()


def _verify(server, token: str, *, audience: str | None = None) -> dict:
    """Verify a JWT like the backend does: key from the JWKS by kid, RS256, exp, iss, aud."""
    discovery = requests.get(server.discovery_url, timeout=10).json()
    signing_key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        issuer=discovery["issuer"],
        audience=audience or server.client_id,
        options={"require": ["exp", "iat", "iss", "sub", "aud"]},
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_discovery_document(oidc_server):
    doc = oidc_server.discovery()
    issuer = oidc_server.issuer
    assert issuer.startswith("http://127.0.0.1:") and not issuer.endswith("/")
    assert doc["issuer"] == issuer
    assert doc["token_endpoint"] == f"{issuer}/oauth/token" == oidc_server.token_endpoint
    assert doc["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert doc["jwks_uri"] == f"{issuer}/oauth/jwks.json" == oidc_server.jwks_uri
    assert doc["userinfo_endpoint"] == f"{issuer}/oauth/userinfo"
    assert {"client_credentials", "authorization_code", "refresh_token"} <= set(
        doc["grant_types_supported"]
    )
    assert "client_secret_post" in doc["token_endpoint_auth_methods_supported"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert "openid" in doc["scopes_supported"]
    # The openEO client derives the discovery URL from the issuer like this
    # (openeo.rest.auth.oidc.OidcProviderInfo):
    provider = OidcProviderInfo(issuer=issuer)
    assert provider.discovery_url == oidc_server.discovery_url
    assert provider.config["token_endpoint"] == oidc_server.token_endpoint

    jwks = oidc_server.jwks()
    assert len(jwks["keys"]) == 1
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA" and key["kid"] and key["n"] and key["e"] == "AQAB"
    assert "d" not in key and "p" not in key  # public part only


def test_client_credentials_token_is_a_verifiable_jwt(oidc_server):
    before = int(time.time())
    response = oidc_server.client_credentials_response(scope="openid")
    assert response["token_type"] == "Bearer"
    assert response["expires_in"] == 3600
    assert response["scope"] == "openid"
    assert "refresh_token" not in response  # RFC 6749 4.4.3
    token = response["access_token"]

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["typ"] == "at+jwt"
    assert header["kid"] == oidc_server.jwks()["keys"][0]["kid"]

    claims = _verify(oidc_server, token)
    assert claims["iss"] == oidc_server.issuer
    assert before - 1 <= claims["iat"] <= int(time.time()) + 1
    assert claims["exp"] > time.time()
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["sub"] == claims["client_id"] == claims["aud"] == oidc_server.client_id
    assert claims["scope"] == "openid"
    assert claims["jti"]
    # a second token is a different token
    other = oidc_server.client_credentials_token()
    assert other != token and _verify(oidc_server, other)["jti"] != claims["jti"]


def test_jwt_verification_really_checks(oidc_server):
    token = oidc_server.client_credentials_token()
    header, payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(
        json.dumps({**_verify(oidc_server, token), "sub": "admin"}).encode()
    ).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(oidc_server, f"{header}.{forged_payload}.{signature}")
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(oidc_server, token, audience="some-other-client")
    key = jwt.PyJWKClient(oidc_server.jwks_uri).get_signing_key_from_jwt(token).key
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(
            token, key, algorithms=["RS256"], audience=oidc_server.client_id,
            issuer="http://localhost:1",
        )


def test_client_credentials_with_a_wrong_secret_is_refused(oidc_server):
    response = requests.post(
        oidc_server.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": oidc_server.client_id,
            "client_secret": "wrong",
        },
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


def test_openeo_client_credentials_authenticator(oidc_server):
    """What `Connection.authenticate_oidc_client_credentials` does once it knows the provider."""
    provider = OidcProviderInfo(issuer=oidc_server.issuer, scopes=["openid", "email"])
    client_info = OidcClientInfo(
        client_id=oidc_server.client_id,
        provider=provider,
        client_secret=oidc_server.client_secret,
    )
    tokens = OidcClientCredentialsAuthenticator(client_info=client_info).get_tokens()
    claims = _verify(oidc_server, tokens.access_token)
    assert claims["sub"] == oidc_server.client_id
    assert claims["iss"] == oidc_server.issuer
    assert set(claims["scope"].split()) == {"openid", "email"}


def test_authorization_code_flow_identifies_the_user(oidc_server):
    tokens = oidc_server.user_token("alice")
    assert tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"] and tokens["id_token"]
    assert set(tokens["scope"].split()) == {"openid", "profile", "email"}

    claims = _verify(oidc_server, tokens["access_token"])
    assert claims["sub"] == "alice"
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@example.org"
    assert claims["client_id"] == oidc_server.client_id
    assert claims["iss"] == oidc_server.issuer
    assert claims["exp"] > time.time()

    id_claims = _verify(oidc_server, tokens["id_token"])
    assert id_claims["sub"] == "alice"

    assert oidc_server.userinfo(tokens["access_token"])["sub"] == "alice"

    bob = _verify(oidc_server, oidc_server.user_token("bob", scope="openid")["access_token"])
    assert bob["sub"] == "bob"
    assert "email" not in bob  # only the claims of the granted scopes


def test_login_with_a_wrong_password_fails(oidc_server):
    oidc_server.create_user("carol", "carol-right-password")
    with pytest.raises(OidcTestServerError, match="got stuck at POST .*/auth/password"):
        oidc_server.user_token("carol", "not-her-password", create=False)
    tokens = oidc_server.user_token("carol", "carol-right-password", create=False)
    assert _verify(oidc_server, tokens["access_token"])["sub"] == "carol"


def test_refresh_returns_a_new_valid_access_token(oidc_server):
    first = oidc_server.user_token("dave")
    first_claims = _verify(oidc_server, first["access_token"])
    time.sleep(1.05)  # so that the new token's iat/exp differ

    second = oidc_server.refresh(first["refresh_token"])
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] and second["refresh_token"] != first["refresh_token"]
    claims = _verify(oidc_server, second["access_token"])
    assert claims["sub"] == "dave"
    assert claims["iss"] == oidc_server.issuer
    assert claims["jti"] != first_claims["jti"]
    assert claims["exp"] > first_claims["exp"]
    assert claims["scope"] == first_claims["scope"]

    # refresh tokens are rotated: the old one no longer works, the new one does
    with pytest.raises(OidcTestServerError, match="invalid_grant"):
        oidc_server.refresh(first["refresh_token"])
    third = oidc_server.refresh(second["refresh_token"])
    assert _verify(oidc_server, third["access_token"])["sub"] == "dave"


def test_in_process_mode_and_startup_time():
    started = time.perf_counter()
    with oidc_mod.start_oidc_server(in_process=True, access_token_lifetime=60) as server:
        startup = time.perf_counter() - started
        assert server.pid is not None
        claims = _verify(server, server.client_credentials_token())
        assert claims["exp"] - claims["iat"] == 60
        assert _verify(server, server.user_token("erin")["access_token"])["sub"] == "erin"
        with pytest.raises(OidcTestServerError, match="already running"):
            with oidc_mod.start_oidc_server(in_process=True):
                pass
    print(f"in-process OIDC server start-up: {startup:.2f}s")
    assert startup < 20
    with pytest.raises(requests.ConnectionError):
        requests.get(server.discovery_url, timeout=5)


def test_subprocess_mode_startup_time_and_cleanup():
    started = time.perf_counter()
    with oidc_mod.start_oidc_server(client_secret="fixed-secret") as server:
        startup = time.perf_counter() - started
        assert server.client_secret == "fixed-secret"
        assert _verify(server, server.client_credentials_token())["iss"] == server.issuer
        pid = server.pid
    print(f"subprocess OIDC server start-up: {startup:.2f}s")
    assert startup < 20
    with pytest.raises(requests.ConnectionError):
        requests.get(server.discovery_url, timeout=5)
    assert not Path(f"/proc/{pid}").exists()  # terminated and reaped


def test_standalone_command_prints_json_and_serves_until_killed():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), "--port", str(port), "--user", "frank:frank-pw-123"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert info["issuer"] == f"http://127.0.0.1:{port}"
        assert info["client_id"] == "openeo-test-client" and info["client_secret"]
        assert info["token_endpoint"] == f"http://127.0.0.1:{port}/oauth/token"
        assert info["users"] == {"frank": "frank-pw-123"}
        server = oidc_mod.OidcTestServer.from_dict(info)
        assert _verify(server, server.client_credentials_token())["sub"] == info["client_id"]
        tokens = server.user_token("frank", "frank-pw-123", create=False)
        assert _verify(server, tokens["access_token"])["sub"] == "frank"
        assert proc.poll() is None
    finally:
        proc.terminate()
        returncode = proc.wait(10)
        proc.stdout.close()
    assert returncode == -signal.SIGTERM
    with pytest.raises(requests.ConnectionError):
        requests.get(info["issuer"], timeout=5)


@pytest.mark.skipif(
    not (HELPER.parents[1] / "__init__.py").exists(),
    reason="`python -m tests.support.oidc_server` needs tests/__init__.py: otherwise "
    "the `tests` package that canaille installs in site-packages shadows ours",
)
def test_module_entry_point():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.oidc_server", "--port", "0"],
        cwd=HELPER.parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        server = oidc_mod.OidcTestServer.from_dict(info)
        assert server.discovery()["issuer"] == info["issuer"]
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
