"""Basic login across real backends: the aggregator's token carries each backend's own token (GET /me works
on each), is stateless (another aggregator process accepts it), expires with the shortest backend token,
and forged or expired tokens are 401 TokenInvalid. A backend down at login is missing until the next."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests

from aggregator.auth.tokens import FederationTokenSigner
from aggregator.federation.backends import BackendConfig
from apicore import errors
from backend.services import secret_key
from tests.aggregator.auth.conftest import aggregator_settings, make_aggregator
from tests.support.fake_backends import HangingServer, RefusingPort


def same_user_everywhere(aggregator, servers, password: str = "pw-of-ada", **passwords) -> str:
    name = f"ada-{uuid.uuid4().hex[:6]}"
    aggregator.auth.users.add(name, password)
    for backend_id, server in servers.items():
        server.services.users.add(name, passwords.get(backend_id, password))
    return name


def me(server, headers) -> requests.Response:
    return requests.get(f"{server.url}/me", headers=headers, timeout=10)


@pytest.fixture
def pair(backends, oidc_server, tmp_path):
    """An aggregator over alpha and beta only."""
    built = make_aggregator(aggregator_settings(tmp_path, oidc_server.issuer, {
        "alpha": backends["alpha"].url, "beta": backends["beta"].url}))
    yield built
    built.federation.stop()


def test_login_gives_working_credentials_for_every_backend(pair, backends):
    name = same_user_everywhere(pair, {k: backends[k] for k in ("alpha", "beta")})
    answer = pair.auth.basic_login(name, "pw-of-ada")
    assert "federation:missing" not in answer
    # alpha's tokens live one hour, less than the aggregator's day: the federation token ends with them
    assert 3600 - 60 < answer["expires_in"] <= 3600
    caller = pair.auth.authenticate(f"Bearer basic//{answer['access_token']}")
    assert caller.name == name and caller.user_id == pair.auth.users.check_password(name, "pw-of-ada").user_id
    for backend_id in ("alpha", "beta"):
        headers = caller.headers_for(backend_id)
        assert headers["Authorization"].startswith("Bearer basic//")
        response = me(backends[backend_id], headers)
        assert response.status_code == 200 and response.json()["name"] == name

    # stateless: another process (a restart, another gunicorn worker) with the same data dir accepts it
    other = pair.rebuilt()
    again = other.auth.authenticate(f"Bearer basic//{answer['access_token']}")
    assert again.user_id == caller.user_id and me(backends["beta"], again.headers_for("beta")).status_code == 200
    # and the raw form (a client of API 1.3 sends tokens without the method prefix)
    assert pair.auth.authenticate(f"Bearer {answer['access_token']}").user_id == caller.user_id


def test_wrong_password_and_a_backend_with_another_password(pair, backends):
    name = same_user_everywhere(pair, {k: backends[k] for k in ("alpha", "beta")}, beta="not-the-same")
    with pytest.raises(errors.CredentialsInvalid) as raised:
        pair.auth.basic_login(name, "wrong")
    assert raised.value.status == 403
    answer = pair.auth.basic_login(name, "pw-of-ada")
    assert answer["federation:missing"] == ["beta"]
    caller = pair.auth.authenticate(f"Bearer basic//{answer['access_token']}")
    assert me(backends["alpha"], caller.headers_for("alpha")).status_code == 200
    assert caller.headers_for("beta") is None
    assert caller.missing_reason("beta") == (
        "the login at backend 'beta' failed when you logged in (Backend 'beta': Wrong user name or password.); "
        "log in again (GET /credentials/basic)")


def test_backend_down_at_login_is_absent(backends, oidc_server, tmp_path):
    with RefusingPort() as down:
        built = make_aggregator(aggregator_settings(tmp_path, oidc_server.issuer, {
            "alpha": backends["alpha"].url, "beta": backends["beta"].url, "down": down.url}))
        try:
            name = same_user_everywhere(built, {k: backends[k] for k in ("alpha", "beta")})
            started = time.monotonic()
            answer = built.auth.basic_login(name, "pw-of-ada")
            assert time.monotonic() - started < 10  # generous: the refused backend does not hold the login
            assert answer["federation:missing"] == ["down"]
            caller = built.auth.authenticate(f"Bearer basic//{answer['access_token']}")
            assert [caller.headers_for(b) is not None for b in ("alpha", "beta", "down")] == [True, True, False]
            assert "connection refused" in caller.missing_reason("down")
            claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
            assert sorted(claims["bt"]) == ["alpha", "beta"] and sorted(claims["bf"]) == ["down"]
        finally:
            built.federation.stop()


def test_a_hanging_backend_holds_the_login_only_until_the_deadline(backends, oidc_server, tmp_path):
    with HangingServer() as hanging:
        built = make_aggregator(aggregator_settings(tmp_path, oidc_server.issuer, {
            "alpha": backends["alpha"].url, "hanging": hanging.url}), login_deadline=1.5)
        try:
            name = same_user_everywhere(built, {"alpha": backends["alpha"]})
            started = time.monotonic()
            answer = built.auth.basic_login(name, "pw-of-ada")
            assert time.monotonic() - started < 1.5 + 3  # argon2 at the aggregator, then at most the deadline
            assert answer["federation:missing"] == ["hanging"]
            caller = built.auth.authenticate(f"Bearer basic//{answer['access_token']}")
            assert "did not answer within 1.5 s" in caller.missing_reason("hanging")
            assert me(backends["alpha"], caller.headers_for("alpha")).status_code == 200
        finally:
            built.federation.stop()


def test_backend_tokens_are_bound_to_the_backend_url(pair, backends):
    name = same_user_everywhere(pair, {k: backends[k] for k in ("alpha", "beta")})
    token = pair.auth.basic_login(name, "pw-of-ada")["access_token"]
    registry = pair.federation.registry
    registry.add(BackendConfig(id="gamma", url=backends["gamma"].url))  # joined after the login
    registry.remove("beta")
    registry.add(BackendConfig(id="beta", url="http://127.0.0.1:9/another/openeo/"))  # the id, elsewhere now
    caller = pair.auth.authenticate(f"Bearer basic//{token}")
    assert caller.headers_for("beta") is None
    assert caller.missing_reason("beta") == ("backend 'beta' has a new URL since you logged in; "
                                             "log in again (GET /credentials/basic)")
    assert caller.missing_reason("gamma") == ("backend 'gamma' joined the federation after you logged in; "
                                              "log in again (GET /credentials/basic)")
    assert caller.headers_for("alpha") is not None


def test_forged_tampered_and_expired_tokens_are_401(pair, backends):
    name = same_user_everywhere(pair, {k: backends[k] for k in ("alpha", "beta")})
    token = pair.auth.basic_login(name, "pw-of-ada")["access_token"]
    user_id = pair.auth.authenticate(f"Bearer basic//{token}").user_id
    forged, _ = FederationTokenSigner("another secret", 3600).issue(user_id, {}, {})
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["bt"]["alpha"]["t"] = "someone-else"
    tampered = ".".join([header, jwt.utils.base64url_encode(jwt.api_jws.json.dumps(claims).encode()).decode(),
                         signature])
    expired, _ = FederationTokenSigner(secret_key(pair.settings), -10).issue(user_id, {}, {})
    for bad, message in [(forged, "invalid"), (tampered, "invalid"), (expired, "expired"), ("x.y.z", "invalid")]:
        with pytest.raises(errors.TokenInvalid, match=message) as raised:
            pair.auth.authenticate(f"Bearer basic//{bad}")
        assert raised.value.status == 401
    # the backend's own basic token is no federation token either
    backend_token = backends["alpha"].basic_token(name, "pw-of-ada")
    with pytest.raises(errors.TokenInvalid):
        pair.auth.authenticate(f"Bearer basic//{backend_token}")


def test_concurrent_users_never_get_each_others_credentials(pair, backends):
    tokens = []
    for _ in range(2):
        name = same_user_everywhere(pair, {k: backends[k] for k in ("alpha", "beta")})
        tokens.append((name, pair.auth.basic_login(name, "pw-of-ada")["access_token"]))

    def whoami(index: int) -> tuple[str, str]:
        name, token = tokens[index % 2]
        caller = pair.auth.authenticate(f"Bearer basic//{token}")
        return name, me(backends["alpha"], caller.headers_for("alpha")).json()["name"]

    with ThreadPoolExecutor(8) as pool:
        for expected, seen in pool.map(whoami, range(24)):
            assert seen == expected
