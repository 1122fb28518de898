"""Is a backend's answer what the openEO API says? Response documents validated against the schemas of
the openEO API document (openeo_api/openapi.yaml: openEO API 1.2.0, unchanged, Apache-2.0).

The document is OpenAPI 3.0 (``nullable``), so schemas are checked with openapi-schema-validator's
``OAS30Validator``. Two ``oneOf``s whose alternatives overlap (every ordinary JSON schema matches all three
of ``process_json_schema``'s; every range summary is also a ``json_schema``) are read as ``anyOf``
(Open-EO/openeo-api#600), else correct process and collection documents fail.

    problems = response_problems("GET", "/collections/{collection_id}", document)   # [] when valid
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).with_name("openeo_api") / "openapi.yaml"
_SUMMARY_STATS = {"$ref": "#/components/schemas/collection_summary_stats"}


def correct_overlapping_one_of(document: dict) -> dict:
    """``document`` (the parsed openapi.yaml) with the two overlapping ``oneOf``s as ``anyOf``, in place."""
    schema = document.get("components", {}).get("schemas", {}).get("process_json_schema", {})
    if "oneOf" in schema:
        schema["anyOf"] = schema.pop("oneOf")
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("oneOf"), list) and _SUMMARY_STATS in node["oneOf"]:
                node["anyOf"] = node.pop("oneOf")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return document


@functools.lru_cache(maxsize=1)
def openeo_api_document() -> dict:
    """The corrected openEO API document (parsed once, ~0.1 s; treat as read-only)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open("rb") as stream:
        return correct_overlapping_one_of(yaml.load(stream, Loader=loader))


@functools.lru_cache(maxsize=64)
def _validator(method: str, path: str, status: str):
    from openapi_schema_validator import OAS30Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    document = openeo_api_document()
    try:
        operation = document["paths"][path][method.lower()]
        operation["responses"][status]["content"]["application/json"]["schema"]
    except KeyError:
        raise KeyError(f"the openEO API has no JSON {status} answer for {method} {path}") from None
    # Refs inside the schemas point into the whole document ("#/components/schemas/..."): validate
    # against a $ref into it, with the document as the root resource.
    pointer = "/".join(part.replace("~", "~0").replace("/", "~1")
                       for part in ("paths", path, method.lower(), "responses", status, "content",
                                    "application/json", "schema"))
    uri = "urn:openeo-api"
    registry = Registry().with_resource(uri, Resource.from_contents(document, default_specification=DRAFT4))
    return OAS30Validator({"$ref": f"{uri}#/{pointer}"}, registry=registry)


def response_problems(method: str, path: str, document: Any, *, status: str = "200",
                      limit: int = 5) -> list[str]:
    """What is wrong with ``document`` as the ``status`` answer to ``method path`` (the path template of
    the API, e.g. ``/collections/{collection_id}``): at most ``limit`` messages naming where, [] if valid."""
    validator = _validator(method.upper(), path, status)
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = _where(error.absolute_path)
        problems.append(f"{where}: {_short(error.message)}")
        if len(problems) >= limit:
            break
    return problems


def _where(path) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or "the document"


def _short(message: str, length: int = 200) -> str:
    return message if len(message) <= length else message[:length - 1] + "…"
