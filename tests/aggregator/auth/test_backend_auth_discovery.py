"""How the aggregator learns what a backend accepts: its OIDC providers by issuer (trailing slashes do not
matter), the API 1.3 JWT conformance class (raw tokens), cached per backend; an unreadable backend is
missing with the reason and is not asked again on every request."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.aggregator.auth.conftest import aggregator_settings, make_aggregator
from tests.support.fake_backends import FakeBackend, RefusingPort

JWT_CLASS = "https://api.openeo.org/1.3.0/authentication/jwt"


def oidc_capabilities(backend_id: str, conforms_to: list[str]) -> dict:
    return {"api_version": "1.3.0", "backend_version": "fake-1", "stac_version": "1.0.0", "type": "Catalog",
            "id": backend_id, "title": backend_id, "description": "fake", "conformsTo": conforms_to,
            "endpoints": [{"path": "/credentials/oidc", "methods": ["GET"]}], "links": []}


@pytest.fixture
def jwt_backend(oidc_server):
    """A backend of API 1.3 that takes raw JWTs and lists the issuer with a trailing slash."""
    with FakeBackend("jwt13") as fake:
        fake.documents[""] = oidc_capabilities("jwt13", ["https://api.openeo.org/1.3.0", JWT_CLASS])
        fake.documents["credentials/oidc"] = {"providers": [
            {"id": "elsewhere", "issuer": "https://other.example/", "title": "x", "scopes": ["openid"]},
            {"id": "egi", "issuer": oidc_server.issuer + "/", "title": "y", "scopes": ["openid"]}]}
        yield fake


@pytest.fixture
def mixed(backends, jwt_backend, oidc_server, tmp_path):
    built = make_aggregator(aggregator_settings(tmp_path, oidc_server.issuer,
                                                {"alpha": backends["alpha"].url, "jwt13": jwt_backend.url}))
    yield built
    built.federation.stop()


def test_jwt_conformance_gets_the_raw_token_and_issuers_match_without_slashes(mixed, jwt_backend, oidc_server):
    token = oidc_server.client_credentials_token()
    caller = mixed.auth.authenticate(f"Bearer oidc/fed-idp/{token}")
    assert caller.headers_for("jwt13") == {"Authorization": f"Bearer {token}"}
    assert caller.headers_for("alpha") == {"Authorization": f"Bearer oidc/idp-a/{token}"}


def test_backend_auth_details_are_cached_per_backend_not_per_user(mixed, jwt_backend, oidc_server):
    tokens = [oidc_server.client_credentials_token(), oidc_server.user_token("lin")["access_token"]]
    callers = [mixed.auth.authenticate(f"Bearer {token}") for token in tokens]

    def resolve(index: int) -> dict:
        return callers[index % 2].headers_for("jwt13")

    with ThreadPoolExecutor(8) as pool:
        headers = list(pool.map(resolve, range(40)))
    # every thread got its own caller's token, never the other's
    assert headers == [{"Authorization": f"Bearer {tokens[i % 2]}"} for i in range(40)]
    assert (jwt_backend.requests[""], jwt_backend.requests["credentials/oidc"]) == (1, 1)


def test_unreadable_backend_is_missing_with_the_reason_and_not_asked_again(backends, oidc_server, tmp_path):
    with FakeBackend("broken") as broken, RefusingPort() as refusing:
        broken.behaviour = "html_500"
        built = make_aggregator(aggregator_settings(tmp_path, oidc_server.issuer, {
            "alpha": backends["alpha"].url, "broken": broken.url, "down": refusing.url}))
        try:
            caller = built.auth.authenticate(f"Bearer oidc/fed-idp/{oidc_server.client_credentials_token()}")
            for _ in range(3):
                assert caller.headers_for("broken") is None
            assert caller.missing_reason("broken") == (
                "the OIDC providers of backend 'broken' could not be read (Backend 'broken' sent an invalid "
                "response (GET / answered HTTP 500 (text/html) without an openEO error). Try again later.)")
            assert broken.requests[""] == 1  # the failure is cached for a short while
            assert caller.headers_for("down") is None
            assert "connection refused" in caller.missing_reason("down")
            assert caller.headers_for("alpha") is not None
        finally:
            built.federation.stop()
