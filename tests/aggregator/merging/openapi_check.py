"""Validate merged documents against the openEO API (openapi.yaml) and the federation extension.

The API document is OpenAPI 3.0 (validated as such, not as 3.1: ``nullable``), with the two overlapping
``oneOf``s read as ``anyOf`` (Open-EO/openeo-api#600; see conformance/suite_workarounds.py). The
federation fields are checked against the schema fragments of the extension's README.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import jsonschema
import yaml
from openapi_core import Spec, V30ResponseValidator, validate_response
from openapi_core.testing import MockRequest, MockResponse

from aggregator.onboarding.openapi import correct_overlapping_one_of
from tests.conftest import SHARED_ASSETS

OPENEO_API = SHARED_ASSETS / "assets" / "openeo-api"
HOST = "http://aggregator.test"


@functools.lru_cache(maxsize=1)
def openeo_spec() -> Spec:
    data = yaml.safe_load((OPENEO_API / "openapi.yaml").read_text())
    for server in data["servers"]:
        server["url"] = HOST + "/openeo/1.2"
        server.pop("variables", None)
    correct_overlapping_one_of(data)
    return Spec.from_dict(data, spec_validator_cls=None)  # the document itself is not re-validated


def assert_valid_response(path: str, document: dict) -> None:
    """``document`` is a valid 200 answer to ``GET path`` (e.g. "/collections/S2") of the openEO API."""
    request = MockRequest(HOST, "get", "/openeo/1.2" + path)
    try:
        validate_response(request, MockResponse(json.dumps(document)), spec=openeo_spec(), cls=V30ResponseValidator)
    except Exception as exc:
        details = [f"{e.message[:300]} at {e.json_path}" for e in getattr(exc.__cause__, "schema_errors", ())]
        raise AssertionError(f"GET {path}: {exc}: {details}") from exc


@functools.lru_cache(maxsize=1)
def federation_schemas() -> dict[str, dict]:
    """``federation:missing`` and ``federation:backends`` schemas from the extension's YAML fragments."""
    text = (OPENEO_API / "extensions" / "federation" / "README.md").read_text()
    schemas = {}
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        properties = (yaml.safe_load(block).get("schema") or {}).get("properties") or {}
        schemas.update({k: v for k, v in properties.items() if k.startswith("federation:")})
    assert {"federation:missing", "federation:backends"} <= set(schemas)
    return schemas


def assert_valid_federation_fields(document, backend_ids) -> int:
    """Every ``federation:*`` field anywhere in ``document`` matches the extension and names only
    ``backend_ids``; returns how many there are."""
    count = 0
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("federation:backends", "federation:missing"):
                    jsonschema.validate(value, federation_schemas()[key])
                    assert set(value) <= set(backend_ids), (key, value)
                    assert value == sorted(set(value)), (key, value)
                    count += 1
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return count
