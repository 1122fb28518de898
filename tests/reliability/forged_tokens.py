"""Tokens an attacker can make: JWTs signed with keys of their own, unsigned (``alg: none``), HMAC-signed
with a provider's public key, or real tokens with a changed payload; and a small OIDC provider whose key
the tests hold (a real HTTP server on 127.0.0.1 publishing a discovery document and a JWKS), so that a
token can be signed correctly and be wrong in exactly one claim (expired, another issuer, audience, ...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(header: dict, claims: dict) -> str:
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())


def unsigned(claims: dict, kid: str | None = None) -> str:
    """``alg: none`` with an empty signature."""
    header = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
    return segments(header, claims) + "."


def hmac_signed(secret: bytes, claims: dict, kid: str | None = None) -> str:
    """HS256 with ``secret`` (e.g. a provider's public key in PEM: the classic algorithm confusion); made by
    hand because PyJWT refuses to use an asymmetric key as an HMAC secret."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = segments(header, claims)
    return signing_input + "." + b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def with_claims(token: str, **changes) -> str:
    """A real token whose payload is changed and whose original signature is kept."""
    head, _, signature = token.split(".")
    claims = {**claims_of(token), **changes}
    return head + "." + b64url(json.dumps(claims).encode()) + "." + signature


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def header_of(token: str) -> dict:
    return jwt.get_unverified_header(token)


def public_pem(jwk: dict) -> bytes:
    """The PEM of an RSA key published in a JWKS (what an attacker would use as an HMAC secret)."""
    key = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def new_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OwnKeyProvider:
    """An OIDC provider whose signing key the tests hold: discovery + JWKS on 127.0.0.1."""

    KID = "own-k1"

    def __init__(self):
        self.key = new_rsa_key()
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwk = {**jwk, "kid": self.KID, "use": "sig", "alg": "RS256"}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": f"{provider.issuer}/jwks"}
                elif self.path == "/jwks":
                    body = {"keys": [provider.jwk]}
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

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._httpd.server_port}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def claims(self, audience: str, **changes) -> dict:
        """Valid claims for ``audience``; a change to None leaves that claim out."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "own-user", "aud": audience, "exp": now + 300, "iat": now,
                  "preferred_username": "own", **changes}
        return {name: value for name, value in claims.items() if value is not None}

    def token(self, audience: str, key=None, kid: str = KID, algorithm: str = "RS256", **changes) -> str:
        return jwt.encode(self.claims(audience, **changes), key or self.key, algorithm=algorithm,
                          headers={"kid": kid})

    def stop(self) -> None:
        self._httpd.shutdown()
