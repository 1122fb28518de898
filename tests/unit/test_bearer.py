from __future__ import annotations

import pytest

from apicore import errors
from apicore.bearer import BearerToken, parse_authorization


def test_forms():
    assert parse_authorization(None) is None
    assert parse_authorization("Bearer basic//abc.def") == BearerToken("basic", "", "abc.def")
    assert parse_authorization("Bearer oidc/egi/eyJ/x") == BearerToken("oidc", "egi", "eyJ/x")
    assert parse_authorization("bearer basic//t") == BearerToken("basic", "", "t")


@pytest.mark.parametrize("header, error", [
    ("Basic abc", errors.AuthenticationSchemeInvalid), ("Bearer ", errors.AuthenticationSchemeInvalid),
    ("Bearer basic/x/y", errors.TokenInvalid), ("Bearer oidc//t", errors.TokenInvalid),
    ("Bearer oidc/p/", errors.TokenInvalid), ("Bearer raw-token", errors.TokenInvalid)])
def test_malformed(header, error):
    with pytest.raises(error):
        parse_authorization(header)


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def test_raw_jwt_is_refused_unless_allowed():
    with pytest.raises(errors.TokenInvalid, match="expected 'basic//<token>' or 'oidc/<provider id>/<access token>'"):
        parse_authorization(f"Bearer {JWT}")  # the backend keeps refusing raw JWTs


def test_raw_jwt_when_allowed():
    assert parse_authorization(f"Bearer {JWT}", allow_jwt=True) == BearerToken("jwt", "", JWT)
    # the prefixed forms keep their meaning
    assert parse_authorization(f"Bearer oidc/egi/{JWT}", allow_jwt=True) == BearerToken("oidc", "egi", JWT)
    assert parse_authorization(f"Bearer basic//{JWT}", allow_jwt=True) == BearerToken("basic", "", JWT)
    for value in ("raw-token", "a.b", "a.b.c.d", "a/b.c.d", "basic/x/y"):
        with pytest.raises(errors.TokenInvalid, match="or a raw JWT access token"):
            parse_authorization(f"Bearer {value}", allow_jwt=True)
