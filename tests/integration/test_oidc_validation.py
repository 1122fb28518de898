"""OIDC token validation faults (expiry, issuer, audience, signature) and JWKS caching.

A real Canaille server cannot be asked for an expired or wrongly signed token, so these cases use a
small real HTTP server that publishes a discovery document and the JWKS of a key made here.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from apicore import errors
from backend.auth.oidc import OidcValidator
from backend.settings import OidcClient, OidcProvider

CLIENT = "openeo-client"  # the provider's default client: its tokens carry it in `aud` unless told otherwise


class _KeyServer:
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}
        self.hits = {"discovery": 0, "jwks": 0}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.endswith("openid-configuration"):
                    server.hits["discovery"] += 1
                    body = {"issuer": server.issuer, "jwks_uri": f"{server.issuer}/jwks"}
                elif self.path == "/jwks":
                    server.hits["jwks"] += 1
                    body = server.jwks
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, key=None, kid="k1", **claims) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": "user-1", "exp": now + 300, "iat": now, "aud": CLIENT,
                   "preferred_username": "ada", **claims}
        payload = {name: value for name, value in payload.items() if value is not None}  # None: claim left out
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def idp():
    server = _KeyServer()
    yield server
    server.httpd.shutdown()


def _validator(idp, audience=None, clients=(CLIENT,)) -> OidcValidator:
    provider = OidcProvider(id="idp", issuer=idp.issuer, title="t", audience=audience,
                            default_clients=[OidcClient(id=client) for client in clients])
    return OidcValidator([provider], ttl=3600)


def test_valid_token_gives_identity(idp):
    identity = _validator(idp).validate("idp", idp.token())
    assert (identity.provider, identity.subject, identity.name) == ("idp", "user-1", "ada")


@pytest.mark.parametrize("claims, message", [
    ({"exp": int(time.time()) - 120}, "expired"),
    ({"iss": "https://evil.example"}, "issuer"),
])
def test_rejected_claims(idp, claims, message):
    with pytest.raises(errors.TokenInvalid, match=message) as info:
        _validator(idp).validate("idp", idp.token(**claims))
    assert info.value.status == 401


def test_audience_checked_when_configured(idp):
    validator = _validator(idp, audience="openeo")
    assert validator.validate("idp", idp.token(aud="openeo")).subject == "user-1"
    with pytest.raises(errors.TokenInvalid):
        validator.validate("idp", idp.token(aud="another-service"))
    with pytest.raises(errors.TokenInvalid):
        validator.validate("idp", idp.token())


@pytest.mark.parametrize("claims", [{"aud": "another-service"}, {"aud": ["another-service", "account"]},
                                    {"aud": None}, {"aud": None, "azp": "another-service"},
                                    {"aud": ["account"], "azp": ["openeo-client"]}])
def test_audience_checked_by_default_against_the_default_clients(idp, claims):
    with pytest.raises(errors.TokenInvalid, match="issued for .*not for this service") as info:
        _validator(idp).validate("idp", idp.token(**claims))
    assert info.value.status == 401 and "GET /credentials/oidc" in info.value.message


@pytest.mark.parametrize("claims", [{}, {"aud": ["account", CLIENT]}, {"aud": "account", "azp": CLIENT},
                                    {"aud": None, "azp": CLIENT}])
def test_default_client_accepted_in_aud_or_azp(idp, claims):
    assert _validator(idp).validate("idp", idp.token(**claims)).subject == "user-1"


def test_audience_list_and_the_conscious_opt_out(idp):
    listed = _validator(idp, audience=["scripts", "portal"])
    assert listed.validate("idp", idp.token(aud="portal")).subject == "user-1"
    assert listed.validate("idp", idp.token(aud="x", azp="scripts")).subject == "user-1"
    with pytest.raises(errors.TokenInvalid):
        listed.validate("idp", idp.token())  # the default client no longer counts once `audience` is set
    anyone = _validator(idp, audience="*", clients=())
    for claims in ({"aud": "another-service"}, {"aud": None}):
        assert anyone.validate("idp", idp.token(**claims)).subject == "user-1"


def test_forged_signature_and_garbage(idp):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    validator = _validator(idp)
    with pytest.raises(errors.TokenInvalid):
        validator.validate("idp", idp.token(key=other_key))
    with pytest.raises(errors.TokenInvalid):
        validator.validate("idp", "not-a-jwt")
    with pytest.raises(errors.TokenInvalid, match="Unknown OIDC provider"):
        validator.validate("nope", idp.token())


def test_keys_are_cached(idp):
    validator = _validator(idp)
    before = dict(idp.hits)
    for _ in range(20):
        validator.validate("idp", idp.token())
    assert idp.hits["discovery"] - before["discovery"] == 1
    assert idp.hits["jwks"] - before["jwks"] == 1


def test_unreachable_provider_is_503_not_500():
    validator = OidcValidator([OidcProvider(id="down", issuer="http://127.0.0.1:9", title="t", audience="x")], ttl=60)
    with pytest.raises(errors.InfrastructureBusy) as info:
        validator.validate("down", "a.b.c")
    assert info.value.status == 503
