"""The token attacks of test_tokens.py, sent to the aggregator: every forged or wrong token answers 401
``TokenInvalid`` with a message that says what to do, never a 5xx, never access, no account made.

The aggregator trusts the same three providers as the backend of test_tokens.py (the real Canaille test
server for its client and, as 'strict', for another client only; a provider whose key the tests hold), and
the same 25 OIDC cases (``test_tokens.oidc_cases``) are sent in the ``oidc/<provider>/`` form and, where the
token is a JWT, in the raw-JWT form the aggregator also accepts (``Bearer <jwt>``: the unverified issuer picks
the provider, so a token valid for the provider its issuer names is no attack there). Basic: the aggregator's
own tokens (aggregator/auth/tokens.py: HS256 under a key derived from its secret, carrying the backends'
tokens) expired, forged, tampered (user, backend tokens inside, audience), signed with the underived secret,
or a backend's token; users removed with ``openeo-aggregator users remove`` (OIDC: until ``users restore``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests

from aggregator.auth.tokens import AUDIENCE, FederationTokenSigner
from backend.auth.basic_tokens import BasicTokenSigner
from backend.services import secret_key
from tests.aggregator.app.conftest import AggregatorServer, settings_for
from tests.reliability.forged_tokens import OwnKeyProvider, b64url, claims_of, new_rsa_key, unsigned, with_claims
from tests.reliability.test_tokens import (HINTS, MALFORMED_HEADERS, OWN_CLIENT, assert_no_or_malformed_tokens_refused, me,
                                          oidc_cases, refusal, trusted_providers)
from tests.support.fake_backends import FakeBackend
from tests.support.oidc_server import oidc_server  # noqa: F401  (session fixture)
from tests.support.postgres import postgres_module_url, postgres_url  # noqa: F401  (fixtures)

CLI = [str(Path(sys.executable).with_name("openeo-aggregator"))]
# Cases whose token is valid for the provider its own issuer names: in the raw form they are no forgery.
VALID_AS_RAW_JWT = {"real token, provider configured for another client", "another provider's valid token",
                    "unknown provider"}


@pytest.fixture(scope="module")
def own_idp():
    provider = OwnKeyProvider()
    yield provider
    provider.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def aggregator(request, oidc_server, own_idp, tmp_path_factory):  # noqa: F811
    """On SQLite and on PostgreSQL (which refuses what SQLite stores: NUL characters, strings over a column's
    size)."""
    database_url = request.getfixturevalue("postgres_module_url") if request.param == "postgres" else None
    providers = trusted_providers(oidc_server, own_idp)
    with FakeBackend("b1") as one, FakeBackend("b2") as two:
        data_dir = tmp_path_factory.mktemp("aggregator-tokens")
        server = AggregatorServer(settings_for(data_dir, {"b1": one.url, "b2": two.url}, oidc_providers=providers,
                                               database_url=database_url))
        server.data_dir, server.database_url = data_dir, database_url
        try:
            yield server
        finally:
            server.stop()


def user_names(server) -> set[str]:
    return {user.name for user in server.parts.auth.users.list()}


def user_id_of(server, name: str) -> str:
    return next(user.user_id for user in server.parts.auth.users.list() if user.name == name)


def test_valid_tokens_are_accepted(aggregator, oidc_server, own_idp):  # noqa: F811
    real = oidc_server.client_credentials_token()
    assert me(aggregator, f"Bearer oidc/testidp/{real}").json()["name"] == f"testidp:{oidc_server.client_id}"
    assert me(aggregator, f"Bearer {real}").status_code == 200  # the raw JWT form
    assert me(aggregator, f"Bearer oidc/own/{own_idp.token(OWN_CLIENT)}").json()["name"] == "own:own"


def test_forged_and_wrong_oidc_tokens_are_refused(aggregator, oidc_server, own_idp):  # noqa: F811
    me(aggregator, f"Bearer oidc/testidp/{oidc_server.client_credentials_token()}")  # the real client's account
    before = user_names(aggregator)
    wrong, sent = [], 0
    cases = oidc_cases(oidc_server, own_idp)
    for what, provider, token, fragment in cases:
        forms = [("prefixed", f"Bearer oidc/{provider}/{token}", fragment)]
        if what not in VALID_AS_RAW_JWT and token.count(".") == 2:
            forms.append(("raw JWT", f"Bearer {token}", ""))
        for form, header, expected in forms:
            sent += 1
            try:
                message = refusal(me(aggregator, header))
            except (AssertionError, ValueError) as failure:
                wrong.append(f"{what} ({form}): {failure}")
                continue
            if expected not in message or not any(hint in message for hint in HINTS):
                wrong.append(f"{what} ({form}): message {message!r} lacks {expected!r} or a hint")
    assert wrong == [], "\n".join(wrong)
    assert user_names(aggregator) == before  # no account made for any of them
    assert len(cases) == 25 and sent >= 45


def test_no_or_malformed_token(aggregator):
    # the aggregator also takes a raw JWT (Bearer <jwt>): one that does not decode is refused too
    assert_no_or_malformed_tokens_refused(aggregator, MALFORMED_HEADERS + [("Bearer a.b", "TokenInvalid")])


@pytest.fixture
def basic_user(aggregator):
    name, password = aggregator.new_user()
    return name, user_id_of(aggregator, name), aggregator.login(name, password)["access_token"]


def test_forged_and_expired_basic_tokens_are_refused(aggregator, basic_user, oidc_server):  # noqa: F811
    name, user_id, token = basic_user
    other_name, other_password = aggregator.new_user()
    other_token = aggregator.login(other_name, other_password)["access_token"]
    secret = secret_key(aggregator.app.extensions["openeo_aggregator"].settings)
    later = {**claims_of(token), "exp": int(time.time()) + 10**6}
    foreign_backend_tokens = {"b1": {"u": "http://127.0.0.1:9/openeo/1.2/", "t": "stolen"}}
    cases = [
        ("expired", FederationTokenSigner(secret, -60).issue(user_id, {}, {})[0], "expired"),
        ("signed with a guessed secret", jwt.encode(later, "guessed-secret", algorithm="HS256"), "invalid"),
        ("signed with the secret itself, not the derived key", jwt.encode(later, secret, algorithm="HS256"), "invalid"),
        ("alg none", unsigned(later), "invalid"),
        ("RS256 with an attacker's key", jwt.encode(later, new_rsa_key(), algorithm="RS256"), "invalid"),
        ("another user's id, signature kept", with_claims(token, sub=user_id_of(aggregator, other_name)), "invalid"),
        ("backend tokens replaced, signature kept", with_claims(token, bt=foreign_backend_tokens), "invalid"),
        ("another user's backend tokens, signature kept", with_claims(token, bt=claims_of(other_token)["bt"]),
         "invalid"),
        ("audience removed, signature kept", with_claims(token, aud="x"), "invalid"),
        ("expiry extended, signature kept", with_claims(token, exp=later["exp"]), "invalid"),
        ("signature cut off", token.rsplit(".", 1)[0] + ".", "invalid"),
        ("a backend's basic token", BasicTokenSigner("a-backend's-secret", 60).issue(user_id), "invalid"),
        ("an OIDC token sent as basic", oidc_server.client_credentials_token(), "invalid"),
        ("a user that never existed, correctly signed",
         FederationTokenSigner(secret, 60).issue("no-such-user", {}, {})[0], "no longer exists"),
    ]
    wrong = []
    for what, forged, fragment in cases:
        for form, header in (("basic//", f"Bearer basic//{forged}"), ("raw JWT", f"Bearer {forged}")):
            if form == "raw JWT" and claims_of(forged).get("aud") != AUDIENCE:
                continue  # not recognised as the aggregator's: an OIDC token of no trusted issuer (below)
            try:
                message = refusal(me(aggregator, header))
            except (AssertionError, ValueError) as failure:
                wrong.append(f"{what} ({form}): {failure}")
                continue
            if fragment not in message:
                wrong.append(f"{what} ({form}): {message!r} lacks {fragment!r}")
    assert wrong == [], "\n".join(wrong)
    assert "not valid for provider 'testidp'" in refusal(me(aggregator, f"Bearer oidc/testidp/{token}"))
    assert me(aggregator, f"Bearer basic//{token}").json()["user_id"] == user_id  # the real one still works
    assert me(aggregator, f"Bearer {token}").json()["user_id"] == user_id
    assert len(cases) == 14


def cli(server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"OPENEO_AGGREGATOR_DATABASE_URL": server.database_url} if server.database_url else {})}
    return subprocess.run(CLI + list(args) + ["--data-dir", str(server.data_dir)], capture_output=True, text=True,
                          timeout=120, env=env)


def test_token_of_a_user_removed_with_the_cli_is_refused(aggregator, basic_user):
    name, user_id, token = basic_user
    headers = {"Authorization": f"Bearer basic//{token}"}
    assert me(aggregator, headers["Authorization"]).status_code == 200
    removed = cli(aggregator, "users", "remove", name)
    assert removed.returncode == 0, removed.stderr
    assert "no longer exists" in refusal(me(aggregator, headers["Authorization"]))
    for path in ("/jobs", "/process_graphs", "/result"):
        method = "POST" if path == "/result" else "GET"
        response = requests.request(method, aggregator.url + path, headers=headers, json={}, timeout=30)
        assert (response.status_code, response.json()["code"]) == (401, "TokenInvalid"), path


def test_token_of_an_oidc_user_removed_with_the_cli_is_refused(aggregator, oidc_server):  # noqa: F811
    token = oidc_server.user_token("removed-at-aggregator")["access_token"]
    header = f"Bearer oidc/testidp/{token}"
    first = me(aggregator, header).json()
    removed = cli(aggregator, "users", "remove", first["name"])
    assert removed.returncode == 0, removed.stderr
    before = user_names(aggregator)
    for authorization in (header, f"Bearer {token}", header):  # the raw JWT form too
        assert "removed by the operator" in refusal(me(aggregator, authorization))
    assert user_names(aggregator) == before  # no new account (with fresh free credits)
    restored = cli(aggregator, "users", "restore", first["name"])
    assert restored.returncode == 0, restored.stderr
    again = me(aggregator, header).json()
    assert again["user_id"] != first["user_id"]  # a new, empty account
    assert cli(aggregator, "users", "restore", first["name"]).returncode != 0


def test_raw_jwts_that_do_not_decode_are_refused_with_a_hint(aggregator):
    """Regression: 'The bearer token is not a valid JWT.' said nothing of what to do."""
    for token in ("a.b.c", "AAAA.BBBB.CCCC", b64url(b'{"alg":"RS256"}') + "." + b64url(b"[1, 2]") + ".abc"):
        message = refusal(me(aggregator, f"Bearer {token}"))
        assert "not a valid JWT" in message and any(hint in message for hint in HINTS), message


def test_identities_the_database_cannot_hold_are_refused_or_named_by_subject(aggregator, own_idp):
    """Regression: a correctly signed token whose `sub` or display name was over the user table's 255
    characters or held a NUL was a 500 on PostgreSQL (and kept as is by SQLite): now a subject the account
    cannot be kept under is a 401 saying so, a display name that cannot be shown is passed over."""
    before = user_names(aggregator)
    for subject, why in (("s" * 191, "longer than 190 characters"), ("s" * 300, "longer than 190 characters"),
                         ("a\x00b", "control character"), ("line\nbreak", "control character"), ("", "empty")):
        for form in ("oidc/own/", ""):
            message = refusal(me(aggregator, f"Bearer {form}{own_idp.token(OWN_CLIENT, sub=subject)}"))
            assert f"subject (`sub`) {'is ' if why == 'empty' else ''}" in message and why in message, message
            assert "Log in again" in message
    assert user_names(aggregator) == before
    for claims in ({"preferred_username": "p" * 10_000}, {"preferred_username": "a\x00b", "name": "Named"},
                   {"preferred_username": {"a": 1}}):
        subject = f"subject-{uuid.uuid4().hex[:8]}"
        response = me(aggregator, f"Bearer oidc/own/{own_idp.token(OWN_CLIENT, sub=subject, **claims)}")
        assert response.status_code == 200, response.text[:300]
        expected = "own:Named" if claims.get("name") else f"own:{subject}"
        assert response.json()["name"] == expected
