"""OIDC at the aggregator with the real OIDC server and real backends: the caller is resolved, each backend
that trusts the issuer gets a header it accepts (GET /me answers the same subject), one that trusts
another issuer is missing with the reason; raw JWTs are accepted."""

from __future__ import annotations

import jwt
import pytest
import requests

from aggregator.auth import BackendCredentialsMissing
from apicore import errors
from tests.aggregator.auth.conftest import OTHER_ISSUER


def me(backend, headers) -> dict:
    response = requests.get(f"{backend.url}/me", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def subject_on(backend, user_id: str) -> tuple[str, str]:
    user = backend.services.users.get(user_id)
    return user.oidc_provider, user.oidc_subject


def test_oidc_caller_and_pass_through(aggregator, backends, oidc_server):
    token = oidc_server.user_token("ada")["access_token"]
    caller = aggregator.auth.authenticate(f"Bearer oidc/fed-idp/{token}")
    assert caller.name == "fed-idp:ada"
    ours = aggregator.auth.users.get(caller.user_id)
    assert ours.oidc_provider == "fed-idp"

    alpha, beta = caller.headers_for("alpha"), caller.headers_for("beta")
    assert alpha == {"Authorization": f"Bearer oidc/idp-a/{token}"}  # each backend's own provider id
    assert beta == {"Authorization": f"Bearer oidc/shared/{token}"}
    alpha_me, beta_me = me(backends["alpha"], alpha), me(backends["beta"], beta)
    assert (alpha_me["name"], beta_me["name"]) == ("idp-a:ada", "shared:ada")
    assert subject_on(backends["alpha"], alpha_me["user_id"]) == ("idp-a", ours.oidc_subject)
    assert subject_on(backends["beta"], beta_me["user_id"]) == ("shared", ours.oidc_subject)

    # Created once: the same token again is the same user.
    assert aggregator.auth.authenticate(f"Bearer oidc/fed-idp/{token}").user_id == caller.user_id


def test_backend_with_another_issuer_is_missing_with_the_reason(aggregator, oidc_server):
    caller = aggregator.auth.authenticate(f"Bearer oidc/fed-idp/{oidc_server.client_credentials_token()}")
    assert caller.headers_for("gamma") is None
    assert caller.missing_reason("gamma") == f"backend 'gamma' does not trust issuer {oidc_server.issuer}"
    with pytest.raises(BackendCredentialsMissing) as raised:
        caller.upstream_headers("gamma")
    assert (raised.value.status, raised.value.code, raised.value.backend_id) == (403, "BackendCredentialsMissing",
                                                                                "gamma")
    assert OTHER_ISSUER not in raised.value.message and oidc_server.issuer in raised.value.message
    assert caller.missing_reason("alpha") is None
    assert caller.headers_for("nope") is None
    assert caller.missing_reason("nope") == "backend 'nope' is not part of the federation"


def test_raw_jwt_is_accepted_and_passed_on(aggregator, backends, oidc_server):
    token = oidc_server.user_token("grace")["access_token"]
    prefixed = aggregator.auth.authenticate(f"Bearer oidc/fed-idp/{token}")
    raw = aggregator.auth.authenticate(f"Bearer {token}")
    assert (raw.user_id, raw.name) == (prefixed.user_id, "fed-idp:grace")  # issuer read from the token
    assert me(backends["beta"], raw.headers_for("beta"))["name"] == "shared:grace"


def test_tokens_the_federation_does_not_trust(aggregator, oidc_server):
    token = oidc_server.client_credentials_token()
    with pytest.raises(errors.TokenInvalid, match="Unknown OIDC provider 'idp-a'"):
        aggregator.auth.authenticate(f"Bearer oidc/idp-a/{token}")  # a backend's id, not ours
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(errors.TokenInvalid) as raised:
        aggregator.auth.authenticate(f"Bearer {tampered}")
    assert raised.value.status == 401
    foreign = jwt.encode({"iss": "https://evil.example", "sub": "x", "exp": 2**31}, "k" * 32, algorithm="HS256")
    with pytest.raises(errors.TokenInvalid, match="'https://evil.example' is not one this federation trusts"):
        aggregator.auth.authenticate(f"Bearer {foreign}")
    assert aggregator.auth.authenticate(None) is None
