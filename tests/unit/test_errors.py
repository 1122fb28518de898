"""Every openEO error code of the spec is an exception class with the spec's status and message."""

from __future__ import annotations

import json

import pytest

from apicore import errors
from apicore.error_catalog import ERROR_CATALOG
from tests.conftest import SHARED_ASSETS

ERRORS_JSON = SHARED_ASSETS / "assets" / "openeo-api" / "errors.json"


@pytest.mark.skipif(not ERRORS_JSON.exists(), reason="openEO API assets absent: get them from the "
                    "openeo-test-suite repository (assets/openeo-api) beside the project as ../shared")
def test_catalog_matches_the_spec():
    spec = json.loads(ERRORS_JSON.read_text())
    assert set(ERROR_CATALOG) == set(spec)
    for code, entry in spec.items():
        cls = errors.by_code(code)
        assert cls.code == code
        assert cls.status == errors.STATUS_OVERRIDES.get(code, entry["http"])
        assert cls.template == entry["message"]


def test_message_template_is_filled():
    error = errors.CollectionNotFound(identifier="S2")
    assert error.message == "Collection 'S2' does not exist."
    assert error.status == 404
    assert error.to_dict("req-1") == {"id": "req-1", "code": "CollectionNotFound",
                                      "message": "Collection 'S2' does not exist.", "links": []}


def test_missing_placeholder_stays_visible():
    assert errors.ProcessUnsupported(process="foo").message == (
        "Process with identifier 'foo' is not available in namespace '{namespace}'.")


def test_custom_message_and_token_invalid_is_401():
    error = errors.TokenInvalid("expired")
    assert (error.status, error.message, error.code) == (401, "expired", "TokenInvalid")
    assert isinstance(error, errors.OpenEOError)
