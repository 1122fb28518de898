"""Signed, expiring access tokens handed out by GET /credentials/basic (HS256 JWTs)."""

from __future__ import annotations

import time

import jwt

from apicore import errors

_AUDIENCE = "openeo-backend/basic"


class BasicTokenSigner:
    def __init__(self, secret: str, ttl_seconds: int):
        self._secret = secret
        self.ttl = ttl_seconds

    def issue(self, user_id: str) -> str:
        now = int(time.time())
        claims = {"sub": user_id, "iat": now, "exp": now + self.ttl, "aud": _AUDIENCE}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def user_id(self, token: str) -> str:
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=_AUDIENCE,
                                options={"require": ["sub", "exp"]})
        except jwt.ExpiredSignatureError:
            raise errors.TokenInvalid("The access token has expired: authenticate again "
                                      "(GET /credentials/basic).") from None
        except jwt.PyJWTError:
            raise errors.TokenInvalid("The access token is invalid: authenticate again "
                                      "(GET /credentials/basic).") from None
        return claims["sub"]
