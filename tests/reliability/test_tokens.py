"""Tokens an attacker or a careless client sends: every one answers 401 ``TokenInvalid`` (or
``AuthenticationRequired`` without a token) with a message that says what to do, never a 5xx, never access,
and no account is made for it.

OIDC: valid tokens come from the real OIDC test server (Canaille, tests/support/oidc_server.py); forged ones
are signed with keys of our own, unsigned (``alg: none``), HMAC-signed with the provider's public key, or
are real tokens with a changed payload. Tokens that are signed correctly but wrong in one claim (expired,
another issuer, another audience, no subject, not yet valid) come from a provider whose key the tests hold
(forged_tokens.OwnKeyProvider). The audience is checked by default (the provider's default clients): the
real server's token is refused by a provider configured for another client of the same issuer.

Basic: expired, forged and tampered tokens of backend/auth/basic_tokens.py, and the token of a user removed
with ``openeo-backend users remove``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests

from backend.app import create_app
from backend.auth.basic_tokens import BasicTokenSigner
from backend.settings import OidcClient, OidcProvider, load_settings
from tests.conftest import LiveServer
from tests.reliability.forged_tokens import (OwnKeyProvider, claims_of, header_of, hmac_signed, new_rsa_key,
                                             public_pem, unsigned, with_claims)
from tests.support.oidc_server import oidc_server  # noqa: F401  (session fixture)

OWN_CLIENT = "own-client"
HINTS = ("log in", "authenticate again", "GET /credentials")  # every refusal tells the client what to do
CLI = [str(Path(sys.executable).with_name("openeo-backend"))]


@pytest.fixture(scope="module")
def own_idp():
    provider = OwnKeyProvider()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def backend(oidc_server, own_idp, tmp_path_factory):  # noqa: F811
    """A backend trusting the real test server twice (for its client, and for another client only: audience
    'another-service') and the provider whose key the tests hold. No `audience` on the first and the last:
    the default clients' ids are the accepted audiences."""
    providers = trusted_providers(oidc_server, own_idp)
    data_dir = tmp_path_factory.mktemp("tokens")
    server = LiveServer(create_app(load_settings(data_dir=data_dir, demo_catalog=False, oidc_providers=providers)))
    server.data_dir = data_dir
    yield server
    server.stop()


def trusted_providers(oidc_server, own_idp) -> list[OidcProvider]:
    """The real test server twice (for its client; for another client only: audience 'another-service') and the
    provider whose key the tests hold; no `audience` on the first and the last: the default clients' ids count."""
    return [
        OidcProvider(id="testidp", issuer=oidc_server.issuer, title="Test IdP",
                     default_clients=[OidcClient(id=oidc_server.client_id)]),
        OidcProvider(id="strict", issuer=oidc_server.issuer, title="Test IdP, another client",
                     audience="another-service"),
        OidcProvider(id="own", issuer=own_idp.issuer, title="Own keys", default_clients=[OidcClient(id=OWN_CLIENT)]),
    ]


def me(server, authorization: str | None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return requests.get(f"{server.url}/me", headers=headers, timeout=30)


def refusal(response: requests.Response, code: str = "TokenInvalid") -> str:
    """The message of a proper openEO 401 refusal (asserted)."""
    assert response.status_code == 401, (response.status_code, response.text[:300])
    body = response.json()
    assert body["code"] == code and body["id"] and isinstance(body["links"], list), body
    assert response.headers["Content-Type"].startswith("application/json")
    return body["message"]


def user_names(server) -> set[str]:
    return {user.name for user in server.services.users.list()}


def test_valid_tokens_are_accepted(backend, oidc_server, own_idp):  # noqa: F811
    """The baseline: the refusals below are about the one thing that is wrong, not the setup."""
    real = oidc_server.client_credentials_token()
    assert claims_of(real)["aud"] == oidc_server.client_id  # what Canaille (our patch) puts in `aud`
    assert me(backend, f"Bearer oidc/testidp/{real}").json()["name"] == f"testidp:{oidc_server.client_id}"
    assert me(backend, f"Bearer oidc/own/{own_idp.token(OWN_CLIENT)}").json()["name"] == "own:own"
    azp_only = own_idp.token("account", azp=OWN_CLIENT)  # Keycloak style: the client in `azp`
    assert me(backend, f"Bearer oidc/own/{azp_only}").status_code == 200


def oidc_cases(oidc_server, own_idp) -> list[tuple[str, str, str, str]]:  # noqa: F811
    """(what, provider id, token, a fragment the message must hold)."""
    real = oidc_server.client_credentials_token()
    other_real = oidc_server.client_credentials_token()
    claims, kid = claims_of(real), header_of(real)["kid"]
    jwk = next(key for key in oidc_server.jwks()["keys"] if key["kid"] == kid)
    attacker = new_rsa_key()
    later = {**claims, "exp": int(time.time()) + 10**6}
    own, own_claims, own_kid = own_idp.token, own_idp.claims(OWN_CLIENT), OwnKeyProvider.KID
    bad_signature = "Signature verification failed"
    return [
        ("signed with another key under the provider's key id", "testidp",
         jwt.encode(later, attacker, algorithm="RS256", headers={"kid": kid}), bad_signature),
        ("signed with another key under an unknown key id", "testidp",
         jwt.encode(later, attacker, algorithm="RS256", headers={"kid": "attacker"}), "signing key"),
        ("alg none", "testidp", unsigned(later, kid=kid), "alg"),
        ("alg none without a key id", "testidp", unsigned(later), "not valid"),
        ("HS256 with the provider's public key as secret", "testidp", hmac_signed(public_pem(jwk), later, kid=kid),
         "alg"),
        ("payload changed, signature kept", "testidp", with_claims(real, sub="someone-else"), bad_signature),
        ("expiry extended, signature kept", "testidp", with_claims(real, exp=later["exp"]), bad_signature),
        ("signature cut off", "testidp", real.rsplit(".", 1)[0] + ".", "not valid"),
        ("signature of another token", "testidp", real.rsplit(".", 1)[0] + "." + other_real.rsplit(".", 1)[1],
         bad_signature),
        ("another provider's valid token", "testidp", own(OWN_CLIENT), "signing key"),
        ("real token, provider configured for another client", "strict", real,
         f"issued for audience '{oidc_server.client_id}', not for this service"),
        ("garbage", "testidp", "not-a-jwt", "not valid"),
        ("10 kB of garbage", "testidp", "A" * 10_240, "not valid"),
        ("unknown provider", "nope", real, "Unknown OIDC provider"),
        # correctly signed by a trusted key, wrong in one claim
        ("expired", "own", own(OWN_CLIENT, exp=int(time.time()) - 120), "expired"),
        ("another issuer", "own", own(OWN_CLIENT, iss=oidc_server.issuer), "issuer"),
        ("issued for another service", "own", own("another-service"), "issued for audience 'another-service'"),
        ("issued for several other services", "own", own(["another-service", "account"]), "not for this service"),
        ("no audience", "own", own(None), "issued for no audience"),
        ("no subject", "own", own(OWN_CLIENT, sub=None), "sub"),
        ("no expiry", "own", own(OWN_CLIENT, exp=None), "exp"),
        ("not yet valid", "own", own(OWN_CLIENT, nbf=int(time.time()) + 3600), "not yet valid"),
        ("azp is a list", "own", own("account", azp=[OWN_CLIENT]), "not for this service"),
        ("own key, HS256 with its public key", "own", hmac_signed(public_pem(own_idp.jwk), own_claims, kid=own_kid),
         "alg"),
        ("own key, alg none", "own", unsigned(own_claims, kid=own_kid), "alg"),
    ]


def test_forged_and_wrong_oidc_tokens_are_refused(backend, oidc_server, own_idp):  # noqa: F811
    me(backend, f"Bearer oidc/testidp/{oidc_server.client_credentials_token()}")  # the real client's account
    before = user_names(backend)
    wrong = []
    cases = oidc_cases(oidc_server, own_idp)
    for what, provider, token, fragment in cases:
        response = me(backend, f"Bearer oidc/{provider}/{token}")
        try:
            message = refusal(response)
        except (AssertionError, ValueError) as failure:
            wrong.append(f"{what}: {failure}")
            continue
        if fragment not in message or not any(hint in message for hint in HINTS):
            wrong.append(f"{what}: message {message!r} lacks {fragment!r} or a hint")
    assert wrong == []
    assert user_names(backend) == before  # no account made for any of them
    assert len(cases) == 25


MALFORMED_HEADERS = [("Bearer", "AuthenticationSchemeInvalid"), ("Basic dXNlcjpwdw==", "AuthenticationSchemeInvalid"),
                     ("Bearer oidc//x.y.z", "TokenInvalid"), ("Bearer basic//", "TokenInvalid"),
                     ("Bearer " + "x" * 10_240, "TokenInvalid")]


def assert_no_or_malformed_tokens_refused(server, headers: list[tuple[str, str]]) -> None:
    """No token: 401 naming the login route; each malformed header: its code, and a hint at the token forms."""
    assert "GET /credentials" in refusal(me(server, None), "AuthenticationRequired")
    for header, code in headers:
        response = me(server, header)
        body = response.json()
        assert (response.status_code, body["code"]) == (403 if code == "AuthenticationSchemeInvalid" else 401, code)
        assert any(hint in body["message"] for hint in ("basic//", "oidc/")), body


def test_no_or_malformed_token(backend):
    assert_no_or_malformed_tokens_refused(backend, MALFORMED_HEADERS)


@pytest.fixture
def basic_user(backend):
    name, password = backend.new_user()
    user_id = next(user.user_id for user in backend.services.users.list() if user.name == name)
    return name, user_id, backend.basic_token(name, password)


def test_forged_and_expired_basic_tokens_are_refused(backend, basic_user, oidc_server):  # noqa: F811
    name, user_id, token = basic_user
    other_name, _ = backend.new_user()
    other_id = next(user.user_id for user in backend.services.users.list() if user.name == other_name)
    secret = backend.services.authenticator.basic._secret
    claims = claims_of(token)
    later = {**claims, "exp": int(time.time()) + 10**6}
    cases = [
        ("expired", BasicTokenSigner(secret, ttl_seconds=-60).issue(user_id), "expired"),
        ("signed with a guessed secret", jwt.encode(later, "guessed-secret", algorithm="HS256"), "invalid"),
        ("alg none", unsigned(later), "invalid"),
        ("RS256 with an attacker's key", jwt.encode(later, new_rsa_key(), algorithm="RS256"), "invalid"),
        ("another user's id, signature kept", with_claims(token, sub=other_id), "invalid"),
        ("expiry extended, signature kept", with_claims(token, exp=later["exp"]), "invalid"),
        ("signature cut off", token.rsplit(".", 1)[0] + ".", "invalid"),
        ("an OIDC token sent as basic", oidc_server.client_credentials_token(), "invalid"),
        ("a user that never existed, correctly signed",
         BasicTokenSigner(secret, ttl_seconds=60).issue("no-such-user"), "no longer exists"),
    ]
    wrong = []
    for what, forged, fragment in cases:
        try:
            message = refusal(me(backend, f"Bearer basic//{forged}"))
        except (AssertionError, ValueError) as failure:
            wrong.append(f"{what}: {failure}")
            continue
        if fragment not in message:
            wrong.append(f"{what}: {message!r} lacks {fragment!r}")
    assert wrong == []
    # and the basic token is no OIDC token either
    assert "not valid for provider 'testidp'" in refusal(me(backend, f"Bearer oidc/testidp/{token}"))
    assert me(backend, f"Bearer basic//{token}").json()["user_id"] == user_id  # the real one still works


def test_token_of_a_user_removed_with_the_cli_is_refused(backend, basic_user):
    name, user_id, token = basic_user
    assert me(backend, f"Bearer basic//{token}").status_code == 200
    removed = cli(backend, "users", "remove", name)
    assert removed.returncode == 0, removed.stderr
    message = refusal(me(backend, f"Bearer basic//{token}"))
    assert "no longer exists" in message
    for path in ("/jobs", "/files", "/process_graphs"):
        response = requests.get(backend.url + path, headers={"Authorization": f"Bearer basic//{token}"}, timeout=30)
        assert (response.status_code, response.json()["code"]) == (401, "TokenInvalid")


def cli(backend, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args) + ["--data-dir", str(backend.data_dir)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


def test_token_of_an_oidc_user_removed_with_the_cli_is_refused(backend, oidc_server):  # noqa: F811
    """Regression: the next request of a removed OIDC user's still-valid token made a new account (with fresh
    free credits), undoing the removal. Now it is refused until `users restore`."""
    token = oidc_server.user_token("removed-grace")["access_token"]
    header = f"Bearer oidc/testidp/{token}"
    first = me(backend, header).json()
    graph = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
    assert requests.put(f"{backend.url}/process_graphs/kept", json=graph, headers={"Authorization": header},
                        timeout=30).status_code == 200
    removed = cli(backend, "users", "remove", first["name"])
    assert removed.returncode == 0, removed.stderr
    before = user_names(backend)
    for _ in range(2):
        assert "removed by the operator" in refusal(me(backend, header))
    assert user_names(backend) == before  # no new account
    restored = cli(backend, "users", "restore", first["name"])
    assert restored.returncode == 0, restored.stderr
    again = me(backend, header).json()
    assert again["user_id"] != first["user_id"]  # a new, empty account
    assert requests.get(f"{backend.url}/process_graphs", headers={"Authorization": header},
                        timeout=30).json()["processes"] == []
    assert cli(backend, "users", "restore", first["name"]).returncode != 0  # nothing left to restore
