"""Argument values checked at every process call (the engine), against the same schemas as
/validation's check of literals (schemas.py).

At run time arguments are values: their JSON parts (literals, numbers and strings computed by other
processes) are checked, while data cubes, arrays and callbacks — which JSON Schema cannot describe — are
accepted as placeholders. The check runs for every node of every graph, so it is kept cheap: schemas
that use only simple keywords are compiled into a Python predicate (see ``ArgumentCheck``).

Numeric ranges (``minimum``, ``maximum``, ``exclusive*``) are not enforced here: the specs' own tests
define the answer outside them — ``arccos(2)`` and ``ln(-1)`` are NaN (IEEE 754), ``array_element`` with
index -1 raises ``ArrayElementNotAvailable`` — so the process decides. /validation still points them
out in literals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import functools
import json

from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import best_match

from apicore.json_types import json_type
from backend.processing.validation.schemas import MAX_REASON, OpenEOValidator, Unresolved, describe

RANGE_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _not_enforced(validator: Any, value: Any, instance: Any, schema: Any) -> None:
    return None


RuntimeValidator = validators.extend(OpenEOValidator, {keyword: _not_enforced for keyword in RANGE_KEYWORDS})


@functools.lru_cache(maxsize=4096)
def _compiled(schema_json: str) -> Any:
    return RuntimeValidator(json.loads(schema_json))


def runtime_validator_for(schema: dict | list) -> Any:
    if isinstance(schema, list):
        schema = {"anyOf": schema} if schema else {}
    return _compiled(json.dumps(schema, sort_keys=True, default=str))


OPAQUE = Unresolved("<computed value>")
_JSON_SCALARS = (str, int, float, bool, type(None))


def runtime_value(value: Any) -> Any:
    """A value computed at run time as JSON Schema sees it: JSON parts as they are, numpy numbers as
    Python numbers, everything else (cubes, arrays, callbacks, dates) as ``OPAQUE``."""
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, dict):
        return {key: runtime_value(item) for key, item in value.items()} if all(
            isinstance(key, str) for key in value) else OPAQUE
    if isinstance(value, (list, tuple)):
        return [runtime_value(item) for item in value]
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == () and \
            getattr(value.dtype, "kind", None) in ("b", "i", "u", "f"):  # numpy numbers (not imported here)
        return value.item()
    return OPAQUE


class ArgumentCheck:
    """A parameter's schema compiled once for checking run-time values (``violation``) many times.

    Most schemas use only ``type``, ``items``, ranges (not enforced) and string ``enum``s; those are
    also compiled into a plain Python predicate that accepts a value in about a microsecond (jsonschema
    takes ~30 µs per array element). jsonschema decides whatever the predicate does not accept, and
    explains failures."""

    def __init__(self, schema: dict | list):
        self.validator = runtime_validator_for(schema)
        self.accepts = _fast_predicate(schema)

    def violation(self, value: Any) -> str | None:
        """Why ``value`` does not fit; None if it does or cannot be told (opaque, nested too deeply)."""
        try:
            instance = runtime_value(value)
            if instance is OPAQUE or (self.accepts is not None and self.accepts(instance)):
                return None
            error = best_match(self.validator.iter_errors(instance))
        except RecursionError:
            return None
        if error is None:
            return None
        reason = describe(error)
        return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"


_FAST_KEYWORDS = {"type", "items", "enum", *RANGE_KEYWORDS}


def _fast_predicate(schema: Any) -> Callable[[Any], bool] | None:
    """A predicate that is True only for values the schema certainly accepts (False: ask jsonschema);
    None when the schema uses keywords beyond ``_FAST_KEYWORDS`` (besides annotations)."""
    if isinstance(schema, list) or (isinstance(schema, dict) and set(schema) & set(Draft7Validator.VALIDATORS)
                                    == {"anyOf"}):
        options = [_fast_predicate(s) for s in (schema if isinstance(schema, list) else schema["anyOf"])]
        if not options or any(option is None for option in options):
            return None
        return lambda value: any(option(value) for option in options)
    if not isinstance(schema, dict):
        return None
    if any(key in Draft7Validator.VALIDATORS and key not in _FAST_KEYWORDS for key in schema):
        return None
    types = schema.get("type")
    types = None if types is None else frozenset([types] if isinstance(types, str) else types)
    items = schema.get("items")
    item_check = _fast_predicate(items) if isinstance(items, dict) else None
    if "items" in schema and item_check is None:
        return None
    enum = schema.get("enum")
    if enum is not None and not all(isinstance(option, str) for option in enum):
        return None

    def accepts(value: Any) -> bool:
        if isinstance(value, Unresolved):
            return True
        if types is not None and not _has_type(value, types):
            return False
        if enum is not None and not (isinstance(value, str) and value in enum):
            return False
        if item_check is not None and isinstance(value, list):
            return all(item_check(item) for item in value)
        return True

    return accepts


def _has_type(instance: Any, types: frozenset[str]) -> bool:
    kind = json_type(instance)
    if kind in types:
        return True
    if kind == "integer":
        return "number" in types
    return kind == "number" and "integer" in types and float(instance).is_integer()
