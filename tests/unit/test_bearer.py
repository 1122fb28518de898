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
