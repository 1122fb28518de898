"""Merge ``GET /processes`` of several backends.

Each backend's ``ProcessRules`` (deny patterns) apply first. Then every process appears once (ordered
by id). A process not offered by every backend of the federation gets ``federation:backends``; so does
a parameter that only some of the process's backends accept.

When backends describe a process differently, each field takes the value most of them agree on (ties:
the most preferred backend, i.e. highest weight), by ``PROCESS_RULES``; parameters are united by name
and merged the same way. A disagreement a user could trip over (return value, a parameter's schema or
default, ...) is recorded as a ``Conflict``; different prose and examples are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Iterable, Mapping

from aggregator.federation.backends import ProcessRules
from aggregator.merging.common import (Conflict, Conflicts, FieldRule, Site, merge_fields, merge_named_list,
                                       merge_object, most_common, most_common_recorded, preference, united,
                                       with_backends, with_missing)
from aggregator.merging.links import backend_root, merge_links, own_links

PARAMETER_RULES: dict[str, FieldRule] = {
    "description": most_common,                 # prose: differences are not conflicts
    # name, schema, optional, default, deprecated, experimental: the most common, differences recorded
}

RETURNS_RULES: dict[str, FieldRule] = {"description": most_common}  # schema: the most common, recorded

PROCESS_RULES: dict[str, FieldRule] = {
    "summary": most_common,
    "description": most_common,
    "categories": united,                       # every category any backend gives
    "parameters": merge_named_list(PARAMETER_RULES),  # united by name, per-parameter federation:backends
    "returns": merge_fields(RETURNS_RULES),     # a different schema is a conflict, other prose is not
    "examples": most_common,
    "links": united,
    "process_graph": most_common,               # an implementation detail of the backend
    # exceptions, deprecated, experimental, ...: the most common, differences recorded
}


@dataclass(frozen=True)
class ProcessListing:
    document: dict  # the merged GET /processes answer
    conflicts: tuple[Conflict, ...]
    by_backend: dict[str, frozenset[str]]  # the process ids each backend offers (after its deny rules)


def offered_processes(listing: Mapping, rules: ProcessRules | None = None) -> dict[str, Mapping]:
    """A backend's processes by id, without those its ``ProcessRules`` deny."""
    processes = {}
    for process in listing.get("processes") or ():
        if isinstance(process, dict) and isinstance(process.get("id"), str):
            if rules is None or rules.allows(process["id"]):
                processes.setdefault(process["id"], process)
    return processes


def merge_processes(listings: Mapping[str, Mapping], *, root_url: str,
                    rules: Mapping[str, ProcessRules] | None = None,
                    weights: Mapping[str, float] | None = None,
                    backend_urls: Mapping[str, str] | None = None,
                    missing: Iterable[str] = (), federation: Collection[str] | None = None) -> ProcessListing:
    """``{backend_id: GET /processes answer}`` -> the merged listing.

    ``federation``: every backend id of the federation (default: the answering and the ``missing``
    ones); a process all of them offer has no ``federation:backends``.
    """
    missing = list(missing)
    members = set(federation) if federation is not None else set(listings) | set(missing)
    order = preference(listings, weights)
    offered = {b: offered_processes(listings[b], (rules or {}).get(b)) for b in order}
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for backend_id in order:
        for process_id, process in offered[backend_id].items():
            grouped.setdefault(process_id, []).append((backend_id, process))
    processes, conflicts = [], []
    for process_id in sorted(grouped):
        merged, found = merge_process(process_id, grouped[process_id], members)
        processes.append(merged)
        conflicts.extend(found)
    urls = backend_urls or {}
    links = merge_links(((listings[b].get("links"), backend_root(listings[b], urls.get(b))) for b in order),
                        own_links(root_url, "processes"))
    document = with_missing({"processes": processes, "links": links}, missing)
    return ProcessListing(document, tuple(conflicts), {b: frozenset(offered[b]) for b in order})


def merge_process(process_id: str, versions: list[tuple[str, Any]], members: Collection[str]
                  ) -> tuple[dict, tuple[Conflict, ...]]:
    """One process as ``(backend_id, spec)`` in preference order -> merged spec and its conflicts."""
    conflicts = Conflicts("process", process_id)
    owners = tuple(b for b, _ in versions)
    merged = merge_object(versions, PROCESS_RULES, Site(conflicts, "", owners), default=most_common_recorded)
    return with_backends(merged, owners, members), tuple(conflicts.found)
