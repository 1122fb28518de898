"""Basic authentication: token issue, use, expiry, forgery, wrong credentials."""

from __future__ import annotations

import base64
import time

import jwt
import requests

from backend.auth.basic_tokens import BasicTokenSigner


def _basic(name: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def test_token_gives_access_to_me(live_server, api):
    name, password = live_server.new_user()
    token_response = requests.get(f"{api}/credentials/basic", headers=_basic(name, password)).json()
    assert token_response["expires_in"] == live_server.services.settings.basic_token_ttl
    me = requests.get(f"{api}/me", headers={"Authorization": f"Bearer basic//{token_response['access_token']}"})
    assert me.status_code == 200
    body = me.json()
    assert body["name"] == name
    assert body["user_id"] == next(u.user_id for u in live_server.services.users.list() if u.name == name)


def test_wrong_password_is_403_credentials_invalid(live_server, api):
    name, _ = live_server.new_user()
    for headers in (_basic(name, "wrong"), _basic("no-such-user", "x")):
        response = requests.get(f"{api}/credentials/basic", headers=headers)
        assert (response.status_code, response.json()["code"]) == (403, "CredentialsInvalid")


def test_missing_credentials_is_401(api):
    response = requests.get(f"{api}/credentials/basic")
    assert (response.status_code, response.json()["code"]) == (401, "AuthenticationRequired")
    response = requests.get(f"{api}/me")
    assert (response.status_code, response.json()["code"]) == (401, "AuthenticationRequired")


def test_expired_token_is_401_token_invalid(live_server, api):
    name, password = live_server.new_user()
    user_id = next(u.user_id for u in live_server.services.users.list() if u.name == name)
    signer = live_server.services.authenticator.basic
    expired = BasicTokenSigner(signer._secret, ttl_seconds=-60).issue(user_id)
    response = requests.get(f"{api}/me", headers={"Authorization": f"Bearer basic//{expired}"})
    assert (response.status_code, response.json()["code"]) == (401, "TokenInvalid")
    assert "expired" in response.json()["message"]


def test_forged_token_is_401_token_invalid(live_server, api):
    name, password = live_server.new_user()
    real = live_server.basic_token(name, password)
    claims = jwt.decode(real, options={"verify_signature": False})
    forged = jwt.encode({**claims, "exp": int(time.time()) + 10**6}, "guessed-secret", algorithm="HS256")
    response = requests.get(f"{api}/me", headers={"Authorization": f"Bearer basic//{forged}"})
    assert (response.status_code, response.json()["code"]) == (401, "TokenInvalid")


def test_token_of_removed_user_is_rejected(live_server, api):
    name, password = live_server.new_user()
    token = live_server.basic_token(name, password)
    assert live_server.services.users.remove(name)
    response = requests.get(f"{api}/me", headers={"Authorization": f"Bearer basic//{token}"})
    assert (response.status_code, response.json()["code"]) == (401, "TokenInvalid")


def test_password_is_stored_as_argon2_hash(live_server):
    name, password = live_server.new_user("plain-text-pw")
    user = next(u for u in live_server.services.users.list() if u.name == name)
    assert user.password_hash.startswith("$argon2id$")
    assert "plain-text-pw" not in user.password_hash
