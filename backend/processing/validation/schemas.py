"""Literal argument values checked against a parameter's JSON schema (draft 7) from a process spec.

* openEO's own keywords (``subtype``, ``parameters``, ``returns``, ``deprecated``, ...) are unknown to
  JSON Schema and ignored; a schema given as a list means "any of these".
* References (``{"from_node"}``, ``{"from_parameter"}``) and callbacks (``{"process_graph"}``) nested in
  a literal value are unknown until run time: they are replaced by a placeholder that every keyword
  accepts, so ``[1, {"from_parameter": "nir"}]`` still gets its array and number checks.
* The engine checks the resolved values at every process call with the same validators
  (runtime_checks.py).
* ``format`` is not asserted (openEO dates such as "2022-06-01T00:00:00" without an offset would fail
  a strict RFC 3339 check; load_collection's own dry run checks its extents).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from apicore.json_types import json_type

MAX_REASON = 300


class Unresolved:
    """A reference or callback inside a literal value: any schema accepts it."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and (
        isinstance(value.get("from_node"), str) or isinstance(value.get("from_parameter"), str))


def is_callback(value: Any) -> bool:
    """The executor's rule: an object with ``process_graph`` as its only key."""
    return isinstance(value, dict) and len(value) == 1 and "process_graph" in value


def is_literal(value: Any) -> bool:
    """No reference or callback anywhere inside: the value is fully known before running."""
    stack = [value]
    while stack:
        item = stack.pop()
        if is_reference(item) or is_callback(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def with_placeholders(value: Any) -> Any:
    """A copy of ``value`` with nested references and callbacks replaced by ``Unresolved``."""
    if is_reference(value):
        key = "from_node" if "from_node" in value else "from_parameter"
        return Unresolved(f"{{{key}: {value[key]!r}}}")
    if is_callback(value):
        return Unresolved("{process_graph: ...}")
    if isinstance(value, dict):
        return {key: with_placeholders(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_placeholders(item) for item in value]
    return value


# What to do instead, for mistakes the schema's own words do not explain: (process, parameter, JSON type
# of the wrong value) → hint appended to the reason.
HINTS = {
    ("load_geojson", "data", "string"): "to read GeoJSON from a URL use load_url with format 'GeoJSON'",
    ("aggregate_spatial", "geometries", "string"): ("pass the geometries inline as GeoJSON; URLs are not fetched "
                                                    "by this backend here (load_url reads allowed ones)"),
}


def with_hint(reason: str, process_id: str, parameter: str, value: Any) -> str:
    hint = HINTS.get((process_id, parameter, json_type(value)))
    return f"{reason}; {hint}" if hint else reason


def _accepting_unresolved(check):
    def keyword(validator, keyword_value, instance, schema):
        if isinstance(instance, Unresolved):
            return
        found = check(validator, keyword_value, instance, schema)
        if found is not None:
            yield from found

    return keyword


OpenEOValidator = validators.extend(
    Draft7Validator, {name: _accepting_unresolved(check) for name, check in Draft7Validator.VALIDATORS.items()})


@functools.lru_cache(maxsize=4096)
def _compiled(schema_json: str) -> Any:
    return OpenEOValidator(json.loads(schema_json))


def validator_for(schema: dict | list) -> Any:
    if isinstance(schema, list):
        schema = {"anyOf": schema} if schema else {}
    return _compiled(json.dumps(schema, sort_keys=True, default=str))


def schema_violation(schema: dict | list | None, value: Any) -> str | None:
    """Why ``value`` (a literal, possibly with nested references) does not fit ``schema``; None if it does."""
    if schema is None or schema == [] or schema == {}:
        return None
    try:
        error = best_match(validator_for(schema).iter_errors(with_placeholders(value)))
    except RecursionError:
        return "the value is nested too deeply to be checked"
    if error is None:
        return None
    reason = describe(error)
    return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"


def describe(error: ValidationError) -> str:
    """A readable reason; "not valid under any of the given schemas" is spelled out where possible."""
    where = "/".join(str(part) for part in error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        at_root = [e for e in error.context if not e.relative_path]
        if at_root and len(at_root) == len(error.context) and all(e.validator == "type" for e in at_root):
            expected = []
            for e in at_root:
                for t in (e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]):
                    if t not in expected:
                        expected.append(t)
            text = f"expected {' or '.join(expected)}, got {json_type(error.instance)} {_short(error.instance)}"
        else:
            titles = [s.get("title") or s.get("subtype") or s.get("type") for s in error.validator_value
                      if isinstance(s, dict)]
            deepest = best_match(_leaves(error))
            text = f"{_short(error.instance)} matches none of the allowed forms"
            if all(isinstance(t, str) for t in titles) and titles:
                text += f" ({', '.join(titles)})"
            if deepest is not None and deepest is not error:
                inner = "/".join(str(part) for part in deepest.absolute_path)
                text += f"; e.g. {deepest.message}" + (f" at '{inner}'" if inner and inner != where else "")
    else:
        text = error.message
    return f"{text} (at '{where}')" if where else text


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    for child in error.context or []:
        if child.context:
            yield from _leaves(child)
        else:
            yield child


def _short(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."
