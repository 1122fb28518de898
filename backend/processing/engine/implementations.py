"""Process ids → Python callables, called with checked, coerced arguments and openEO errors.

Every call checks the given argument values against the parameters' JSON schemas of the process spec
(the check /validation makes on literals, here on the resolved values, so computed values are checked
too); what a process then raises is classified by failures.py: the user's mistakes are 4xx, anything
unexpected 500 ``Internal``.

openeo-processes-dask functions take pg-parser types for some arguments (BoundingBox,
TemporalInterval): we convert by the parameter's declared subtype, never by the value's shape, so a
string that looks like a date stays a string where the spec says string.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from apicore import errors
from backend.processing.engine.failures import process_failure
from backend.processing.validation.runtime_checks import ArgumentCheck
from backend.processing.validation.schemas import with_hint


@dataclass(frozen=True)
class Implementation:
    function: Callable
    spec: dict
    coerce_pg_types: bool  # True for openeo-processes-dask functions
    wants_context: bool  # our own processes take the RunContext as `run_context`

    @functools.cached_property
    def python_parameters(self) -> frozenset[str]:
        return frozenset(inspect.signature(self.function).parameters)

    @functools.cached_property
    def takes_any_keyword(self) -> bool:
        """The function has ``**kwargs`` (inspect.signature is too slow to ask on every call)."""
        parameters = inspect.signature(self.function).parameters.values()
        return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)

    @functools.cached_property
    def argument_checks(self) -> dict[str, ArgumentCheck]:
        """The spec's parameter schemas compiled for run-time checks (those with a schema), built once."""
        return {p["name"]: ArgumentCheck(p["schema"]) for p in self.spec.get("parameters", [])
                if p.get("schema") not in (None, {}, [])}


class Implementations:
    def __init__(self, entries: dict[str, Implementation]):
        self._entries = entries

    def __contains__(self, process_id: str) -> bool:
        return process_id in self._entries

    def ids(self) -> list[str]:
        return sorted(self._entries)

    def spec(self, process_id: str) -> dict:
        return self._entries[process_id].spec

    def call(self, process_id: str, arguments: dict[str, Any], inherited: dict[str, Any], context: Any,
             node_id: str) -> Any:
        entry = self._entries[process_id]
        check_argument_values(process_id, node_id, entry, arguments)
        kwargs = _accepted(process_id, entry, checked_arguments(process_id, entry.spec, arguments))
        if entry.coerce_pg_types:
            kwargs = coerce_pg_types(entry.spec, kwargs)
        for name, value in inherited.items():
            if name in entry.python_parameters and name not in kwargs:
                kwargs[name] = value
        if entry.wants_context:
            kwargs["run_context"] = context
        try:
            return entry.function(**kwargs)
        except errors.OpenEOError:
            raise
        except Exception as exc:
            raise process_failure(process_id, node_id, exc) from exc


def _accepted(process_id: str, entry: Implementation, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop spec parameters the Python function lacks when they carry their default (e.g. `context`);
    refuse a real value for one, rather than ignoring it silently."""
    if entry.takes_any_keyword:
        return kwargs
    defaults = {p["name"]: p.get("default") for p in entry.spec.get("parameters", [])}
    accepted = {}
    for name, value in kwargs.items():
        if name in entry.python_parameters:
            accepted[name] = value
        elif value is not None and value != defaults.get(name):
            raise errors.ProcessParameterInvalid(
                process=process_id, parameter=name,
                reason="this backend's implementation does not support it; leave it at its default")
    return accepted


def check_argument_values(process_id: str, node_id: str, entry: Implementation, arguments: dict[str, Any]) -> None:
    """The given (not defaulted) argument values against the parameters' schemas: 400
    ``ProcessParameterInvalid`` naming the node and parameter, as /validation reports it.

    A no-data value (``null``) as the whole argument is left to the process: the spec passes no-data
    through even where a schema omits null (e.g. normalized_difference's tests), and computed values
    are often null."""
    checks = entry.argument_checks
    for name, value in arguments.items():
        check = checks.get(name)
        if check is None or value is None:
            continue
        reason = check.violation(value)
        if reason is not None:
            error = errors.ProcessParameterInvalid(process=process_id, parameter=name,
                                                   reason=with_hint(reason, process_id, name, value))
            raise errors.ProcessParameterInvalid(f"Node '{node_id}': {error.message}")


def checked_arguments(process_id: str, spec: dict, arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments with spec defaults applied; unknown or missing required ones are refused."""
    declared = {p["name"]: p for p in spec.get("parameters", [])}
    for name in arguments:
        if name not in declared:
            raise errors.ProcessParameterUnsupported(process=process_id, parameter=name)
    kwargs = dict(arguments)
    for name, parameter in declared.items():
        if name in kwargs:
            continue
        if "default" in parameter:
            kwargs[name] = parameter["default"]
        elif not parameter.get("optional", False):
            raise errors.ProcessParameterRequired(process=process_id, parameter=name)
    return kwargs


def coerce_pg_types(spec: dict, kwargs: dict[str, Any]) -> dict[str, Any]:
    from openeo_pg_parser_networkx.pg_schema import BoundingBox, TemporalInterval
    from pydantic import ValidationError

    subtypes = {p["name"]: _subtypes(p.get("schema", {})) for p in spec.get("parameters", [])}
    for name, value in list(kwargs.items()):
        try:
            if "bounding-box" in subtypes.get(name, ()) and isinstance(value, dict):
                kwargs[name] = BoundingBox(**value)
            elif "temporal-interval" in subtypes.get(name, ()) and isinstance(value, list):
                kwargs[name] = TemporalInterval(value)
        except ValidationError as exc:  # the user's value (e.g. an unknown CRS, a date that is none)
            reason = "; ".join(f"{error['msg']} ({error['input']!r})" for error in exc.errors()[:3])
            raise errors.ProcessParameterInvalid(process=spec.get("id", "?"), parameter=name, reason=reason) from None
    return kwargs


def _subtypes(schema: dict | list) -> set[str]:
    schemas = schema if isinstance(schema, list) else [schema]
    return {s.get("subtype") for s in schemas if isinstance(s, dict) and s.get("subtype")}
