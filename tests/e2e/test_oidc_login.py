"""OIDC against a real OIDC server (Canaille via pytest-iam): client credentials and authorization code."""

from __future__ import annotations

import openeo
import pytest
import requests

from backend.app import create_app
from backend.settings import OidcClient, OidcProvider, load_settings
from tests.conftest import LiveServer
from tests.support.oidc_server import oidc_server  # noqa: F401  (session fixture)


@pytest.fixture(scope="module")
def oidc_backend(oidc_server, tmp_path_factory):  # noqa: F811
    provider = OidcProvider(
        id="testidp", issuer=oidc_server.issuer, title="Test IdP", scopes=["openid", "profile"],
        default_clients=[OidcClient(id=oidc_server.client_id, grant_types=["authorization_code+pkce",
                                                                           "refresh_token"],
                                    redirect_urls=["http://localhost:1410/"])])
    settings = load_settings(data_dir=tmp_path_factory.mktemp("oidc"), demo_catalog=False,
                             oidc_providers=[provider])
    server = LiveServer(create_app(settings))
    yield server
    server.stop()


def test_provider_listing(oidc_backend, oidc_server):  # noqa: F811
    providers = requests.get(f"{oidc_backend.url}/credentials/oidc").json()["providers"]
    assert providers == [{
        "id": "testidp", "issuer": oidc_server.issuer, "title": "Test IdP", "scopes": ["openid", "profile"],
        "default_clients": [{"id": oidc_server.client_id,
                             "grant_types": ["authorization_code+pkce", "refresh_token"],
                             "redirect_urls": ["http://localhost:1410/"]}]}]


def test_python_client_with_client_credentials(oidc_backend, oidc_server):  # noqa: F811
    con = openeo.connect(oidc_backend.url)
    con.authenticate_oidc_client_credentials(client_id=oidc_server.client_id,
                                             client_secret=oidc_server.client_secret, provider_id="testidp")
    first = con.describe_account()
    again = openeo.connect(oidc_backend.url).authenticate_oidc_client_credentials(
        client_id=oidc_server.client_id, client_secret=oidc_server.client_secret,
        provider_id="testidp").describe_account()
    assert first["user_id"] == again["user_id"]  # created on first sight, found afterwards
    users = [u for u in oidc_backend.services.users.list() if u.oidc_provider == "testidp"]
    assert len(users) == 1 and users[0].user_id == first["user_id"]


def test_user_login_and_refresh(oidc_backend, oidc_server):  # noqa: F811
    tokens = oidc_server.user_token("grace")
    me = requests.get(f"{oidc_backend.url}/me",
                      headers={"Authorization": f"Bearer oidc/testidp/{tokens['access_token']}"}).json()
    assert me["name"] == "testidp:grace"
    refreshed = oidc_server.refresh(tokens["refresh_token"])
    again = requests.get(f"{oidc_backend.url}/me",
                         headers={"Authorization": f"Bearer oidc/testidp/{refreshed['access_token']}"}).json()
    assert again["user_id"] == me["user_id"]


def test_token_of_unknown_provider_and_tampered_token(oidc_backend, oidc_server):  # noqa: F811
    token = oidc_server.client_credentials_token()
    response = requests.get(f"{oidc_backend.url}/me", headers={"Authorization": f"Bearer oidc/other/{token}"})
    assert (response.status_code, response.json()["code"]) == (401, "TokenInvalid")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = requests.get(f"{oidc_backend.url}/me", headers={"Authorization": f"Bearer oidc/testidp/{tampered}"})
    assert (response.status_code, response.json()["code"]) == (401, "TokenInvalid")
