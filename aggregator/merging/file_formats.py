"""Merge ``GET /file_formats`` of several backends.

Input and output formats are united separately. Format names are matched ignoring case, as the clients
do (``GTiff`` and ``GTIFF`` are one format); the most preferred backend's spelling is shown. A format not
offered by every backend of the federation gets ``federation:backends``; so does a format parameter only
some of the format's backends accept. Formats described differently are merged field by field (the
value most backends agree on; ties: the most preferred backend), conflicts recorded as for processes.
"""

from __future__ import annotations

from typing import Any, Collection, Iterable, Mapping

from aggregator.merging.common import (Conflicts, FieldRule, Merged, Site, merge_keyed_objects, merge_named_map,
                                       merge_object, most_common, preference, united, with_backends, with_missing)

PARAMETER_RULES: dict[str, FieldRule] = {
    "description": most_common,
    # type, enum, default, ...: the most common, differences recorded
}

FORMAT_RULES: dict[str, FieldRule] = {
    "description": most_common,
    "gis_data_types": united,                    # every data type any backend writes/reads
    "parameters": merge_named_map(PARAMETER_RULES),  # united by name, per-parameter federation:backends
    "links": united,
    # title, deprecated, experimental, ...: the most common, differences recorded
}

DIRECTIONS = ("input", "output")


def merge_file_formats(documents: Mapping[str, Mapping], *, weights: Mapping[str, float] | None = None,
                       missing: Iterable[str] = (), federation: Collection[str] | None = None) -> Merged[dict]:
    """``{backend_id: GET /file_formats answer}`` -> the merged answer (``federation`` as for processes)."""
    missing = list(missing)
    members = set(federation) if federation is not None else set(documents) | set(missing)
    order = preference(documents, weights)
    found = []
    merged: dict[str, Any] = {}
    for direction in DIRECTIONS:
        def merge_one(versions: list[tuple[str, Any]], name: str, direction: str = direction) -> Any:
            site_conflicts = Conflicts("file_format", f"{direction}:{name}")
            owners = tuple(b for b, _ in versions)
            value = merge_object(versions, FORMAT_RULES, Site(site_conflicts, "", owners))
            found.extend(site_conflicts.found)
            return with_backends(value, owners, members)

        maps = [(b, documents[b].get(direction)) for b in order if isinstance(documents[b].get(direction), dict)]
        merged[direction] = merge_keyed_objects(maps, merge_one, casefold=True)
    return Merged(with_missing(merged, missing), tuple(found))
