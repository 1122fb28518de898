"""Process ids → Python callables, called with checked, coerced arguments and openEO errors.

openeo-processes-dask functions take pg-parser types for some arguments (BoundingBox,
TemporalInterval): we convert by the parameter's declared subtype, never by the value's shape, so a
string that looks like a date stays a string where the spec says string.
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable

from apicore import errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Implementation:
    function: Callable
    spec: dict
    coerce_pg_types: bool  # True for openeo-processes-dask functions
    wants_context: bool  # our own processes take the RunContext as `run_context`

    @functools.cached_property
    def python_parameters(self) -> frozenset[str]:
        return frozenset(inspect.signature(self.function).parameters)


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
    parameters = inspect.signature(entry.function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
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

    subtypes = {p["name"]: _subtypes(p.get("schema", {})) for p in spec.get("parameters", [])}
    for name, value in list(kwargs.items()):
        if "bounding-box" in subtypes.get(name, ()) and isinstance(value, dict):
            kwargs[name] = BoundingBox(**value)
        elif "temporal-interval" in subtypes.get(name, ()) and isinstance(value, list):
            kwargs[name] = TemporalInterval(value)
    return kwargs


def _subtypes(schema: dict | list) -> set[str]:
    schemas = schema if isinstance(schema, list) else [schema]
    return {s.get("subtype") for s in schemas if isinstance(s, dict) and s.get("subtype")}


def process_failure(process_id: str, node_id: str, exc: Exception) -> errors.OpenEOError:
    """openeo-processes-dask raises exceptions named after openEO error codes: keep the code."""
    name = type(exc).__name__
    message = f"Process '{process_id}' (node '{node_id}') failed: {exc}"
    if _is_openeo_exception(exc):
        error = errors.OpenEOError(message)
        error.code, error.status = name, 400
        return error
    if isinstance(exc, (ValueError, TypeError, KeyError, IndexError)):
        return errors.ProcessParameterInvalid(message)  # raised on argument values that do not fit
    log.exception("process %s (node %s) raised %s", process_id, node_id, name)
    return errors.Internal(message=f"{message} ({name})")


def _is_openeo_exception(exc: Exception) -> bool:
    from openeo_processes_dask.process_implementations.exceptions import OpenEOException

    return isinstance(exc, OpenEOException)
