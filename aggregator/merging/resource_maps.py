"""Merge ``GET /udf_runtimes`` and ``GET /service_types``: maps from a name to a resource object.

Their top level is the map itself, so (federation extension) it carries no federation fields, not even
``federation:missing``. Inside, each runtime or service type not offered by every backend of the
federation gets ``federation:backends``, and so do UDF runtime versions, libraries and service
configuration parameters that only some of their parent's backends have. Names are matched exactly.
Objects described differently are merged field by field as processes are (the value most backends agree
on; ties: the most preferred backend), conflicts recorded.
"""

from __future__ import annotations

from typing import Any, Collection, Mapping

from aggregator.merging.common import (Conflicts, FieldRule, Merged, Site, merge_keyed_objects, merge_named_list,
                                       merge_named_map, merge_object, most_common, preference, united,
                                       with_backends)

LIBRARY_RULES: dict[str, FieldRule] = {"links": united}  # version, deprecated, ...: most common, recorded
RUNTIME_VERSION_RULES: dict[str, FieldRule] = {"libraries": merge_named_map(LIBRARY_RULES)}
UDF_RUNTIME_RULES: dict[str, FieldRule] = {
    "description": most_common,
    "versions": merge_named_map(RUNTIME_VERSION_RULES),  # united, per-version federation:backends
    "tags": united,                                      # docker runtimes: every tag any backend has
    "links": united,
    # title, type, default, docker, ...: the most common, differences recorded
}

PARAMETER_RULES: dict[str, FieldRule] = {"description": most_common}
SERVICE_TYPE_RULES: dict[str, FieldRule] = {
    "description": most_common,
    "configuration": merge_named_map(PARAMETER_RULES),        # per-parameter federation:backends
    "process_parameters": merge_named_list(PARAMETER_RULES),
    "links": united,
}


def merge_udf_runtimes(documents: Mapping[str, Mapping], *, weights: Mapping[str, float] | None = None,
                       federation: Collection[str] | None = None) -> Merged[dict]:
    """``{backend_id: GET /udf_runtimes answer}`` -> the merged map (``federation``: every backend id of
    the federation, default: those answering)."""
    return _merge_map("udf_runtime", UDF_RUNTIME_RULES, documents, weights, federation)


def merge_service_types(documents: Mapping[str, Mapping], *, weights: Mapping[str, float] | None = None,
                        federation: Collection[str] | None = None) -> Merged[dict]:
    """``{backend_id: GET /service_types answer}`` -> the merged map."""
    return _merge_map("service_type", SERVICE_TYPE_RULES, documents, weights, federation)


def _merge_map(kind: str, rules: Mapping[str, FieldRule], documents: Mapping[str, Mapping],
               weights: Mapping[str, float] | None, federation: Collection[str] | None) -> Merged[dict]:
    members = set(federation) if federation is not None else set(documents)
    found = []

    def merge_one(versions: list[tuple[str, Any]], name: str) -> Any:
        conflicts = Conflicts(kind, name)
        owners = tuple(b for b, _ in versions)
        merged = merge_object(versions, rules, Site(conflicts, "", owners))
        found.extend(conflicts.found)
        return with_backends(merged, owners, members)

    maps = [(b, documents[b]) for b in preference(documents, weights) if isinstance(documents[b], dict)]
    return Merged(merge_keyed_objects(maps, merge_one), tuple(found))
