"""Merge ``GET /collections`` and ``GET /collections/{id}`` of several backends, losslessly.

Input: ``{backend_id: document}``, already filtered by each backend's ``CollectionRules``. A collection
on one backend keeps its document; one on several is merged field by field by ``COLLECTION_RULES``.
Either way it gets ``federation:backends`` at the top level and in ``summaries`` (CDSE's documentation
tells users to read ``summaries["federation:backends"]``), and the aggregator's links (``links.py``).
Disagreements that a user could trip over are returned as ``Conflict``s for the operator endpoint.

The per-backend documents stay available to routing as a ``CollectionIndex`` (each backend's own
extents decide whether it can serve a request).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping

from aggregator.merging import cube
from aggregator.merging.common import (FEDERATION_BACKENDS, Conflict, Conflicts, Merged, pick_first, preference,
                                       union_lists, with_missing)
from aggregator.merging.extents import union_spatial_extents, union_temporal_extents
from aggregator.merging.links import backend_root, merge_links, own_links

log = logging.getLogger(__name__)

Values = list[tuple[str, Any]]  # (backend_id, value) of the backends that have the field, most preferred first


@dataclass
class _Context:
    conflicts: Conflicts
    documents: list[tuple[str, Mapping]]  # (backend_id, document), most preferred first

    @property
    def count(self) -> int:  # backends offering the collection
        return len(self.documents)

    @cached_property
    def band_holders(self) -> dict[str, set[str]]:
        """Backend -> band names, for the backends that describe bands."""
        return {b: names for b, doc in self.documents if (names := cube.band_names(doc)) is not None}

    @cached_property
    def same_bands(self) -> bool:
        """Every backend describes the same bands: none needs federation:backends."""
        band_sets = list(self.band_holders.values())
        return len(band_sets) in (0, self.count) and all(names == band_sets[0] for names in band_sets)


# -- the rules (each gets the non-null values of one field) --

def first_non_null(values: Values, ctx: _Context, path: str) -> Any:
    return values[0][1]


def first_non_null_recorded(values: Values, ctx: _Context, path: str) -> Any:
    return pick_first(values, ctx.conflicts, path)


def union_of_lists(values: Values, ctx: _Context, path: str) -> list:
    return union_lists(v if isinstance(v, list) else [v] for _, v in values)


def highest_version(values: Values, ctx: _Context, path: str) -> str:
    return max((v for _, v in values), key=lambda v: tuple(int(p) if p.isdigit() else 0 for p in str(v).split(".")))


def true_if_all(values: Values, ctx: _Context, path: str) -> bool:
    return len(values) == ctx.count and all(v is True for _, v in values)


def same_or_various(values: Values, ctx: _Context, path: str) -> str:
    """One licence, or STAC's "various" (each backend's licence link is kept) and a recorded conflict."""
    first = values[0][1]
    if len(values) == ctx.count and all(v == first for _, v in values):
        return first
    ctx.conflicts.add(path, dict(values), "various")
    return "various"


def union_by_name(values: Values, ctx: _Context, path: str) -> list:
    names: set = set()
    merged = []
    for _, items in values:
        for item in items if isinstance(items, list) else ():
            name = item.get("name") if isinstance(item, dict) else None
            if name not in names or name is None:
                names.add(name)
                merged.append(item)
    return merged


def union_by_key(values: Values, ctx: _Context, path: str) -> dict:
    keys = union_lists(list(v) for _, v in values)
    return {key: pick_first([(b, v[key]) for b, v in values if key in v], ctx.conflicts, f"{path}.{key}")
            for key in keys}


def union_of_extents(values: Values, ctx: _Context, path: str) -> dict:
    values = [(b, e) for b, e in values if isinstance(e, dict)]
    first = values[0][1]
    spatial = [(e.get("spatial") or {}).get("bbox") for _, e in values]
    temporal = [(e.get("temporal") or {}).get("interval") for _, e in values]
    bboxes = union_spatial_extents(spatial) or (first.get("spatial") or {}).get("bbox")
    return {**first, "spatial": {**(first.get("spatial") or {}), "bbox": bboxes},
            "temporal": {**(first.get("temporal") or {}), "interval": union_temporal_extents(temporal)}}


def merged_dimensions(values: Values, ctx: _Context, path: str) -> dict:
    return cube.merge_dimensions(values, ctx.conflicts)


def merged_summaries(values: Values, ctx: _Context, path: str) -> dict:
    return cube.merge_summaries(values, ctx.band_holders, ctx.conflicts)


def merged_bands(values: Values, ctx: _Context, path: str) -> list:
    return cube.merge_bands(values, ctx.band_holders, ctx.conflicts, path)


Rule = Callable[[Values, _Context, str], Any]

# How each field of a collection on several backends is merged; any other field: DEFAULT_RULE.
COLLECTION_RULES: dict[str, Rule] = {
    "stac_version": highest_version,            # the newest STAC version of the parts
    "stac_extensions": union_of_lists,          # every extension any part uses
    "type": first_non_null,
    "id": first_non_null,
    "title": first_non_null_recorded,           # first non-null title; different titles: conflict
    "description": first_non_null_recorded,
    "version": first_non_null_recorded,
    "keywords": union_of_lists,
    "deprecated": true_if_all,                  # deprecated only when every backend deprecates it
    "license": same_or_various,                 # one licence, or "various" + conflict
    "providers": union_by_name,                 # every provider once (by name)
    "extent": union_of_extents,                 # union of bboxes / intervals, each backend's kept after it
    "cube:dimensions": merged_dimensions,       # union of dimensions and band labels (cube.py)
    "summaries": merged_summaries,              # bands by name, lists united, ranges widened (cube.py)
    "bands": merged_bands,                      # STAC 1.1 top-level bands, like summaries' bands
    "item_assets": union_by_key,                # every asset definition; different ones: conflict
    "assets": union_by_key,
    "sci:publications": union_of_lists,
}
DEFAULT_RULE: Rule = first_non_null_recorded
SKIPPED = frozenset({"links", FEDERATION_BACKENDS})  # set by the merge itself
BAND_FIELDS = frozenset({"summaries", "bands"})  # where bands get federation:backends


def merge_collection(collection_id: str, documents: Mapping[str, Mapping], *, root_url: str,
                     weights: Mapping[str, float] | None = None,
                     backend_urls: Mapping[str, str] | None = None) -> Merged[dict]:
    """One collection's documents (full ``/collections/{id}`` or listing entries) -> the merged one."""
    if not documents:
        raise ValueError(f"no document of collection '{collection_id}' to merge")
    order = preference(documents, weights)
    conflicts = Conflicts("collection", collection_id)
    backends = sorted(order)
    urls = backend_urls or {}
    links = merge_links(((documents[b].get("links"), backend_root(documents[b], urls.get(b))) for b in order),
                        own_links(root_url, f"collections/{collection_id}", "collections"))
    if len(order) == 1:
        merged = dict(documents[order[0]])
    else:
        merged = _merge_fields([(b, documents[b]) for b in order], conflicts)
    merged["links"] = links
    merged[FEDERATION_BACKENDS] = backends
    summaries = merged.get("summaries")
    merged["summaries"] = {**(summaries if isinstance(summaries, dict) else {}), FEDERATION_BACKENDS: backends}
    return Merged(merged, tuple(conflicts.found))


def _merge_fields(documents: list[tuple[str, Mapping]], conflicts: Conflicts) -> dict:
    ctx = _Context(conflicts, documents)
    merged: dict[str, Any] = {}
    for key in union_lists([list(doc) for _, doc in documents]):
        if key in SKIPPED:
            continue
        values = [(b, doc[key]) for b, doc in documents if doc.get(key) is not None]
        if not values:
            merged[key] = None
            continue
        first = values[0][1]
        if (len(values) == ctx.count and all(value == first for _, value in values[1:])
                and (key not in BAND_FIELDS or ctx.same_bands)):
            merged[key] = first  # every backend says the same: every rule would keep it (bands: when
            continue             # every backend has the same, none needs federation:backends)
        rule = COLLECTION_RULES.get(key, DEFAULT_RULE)
        try:
            merged[key] = rule(values, ctx, key)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a part of unexpected shape
            log.warning("collection '%s': field %s not merged (%s); the most preferred backend's value is "
                        "shown", conflicts.id, key, exc)
            merged[key] = values[0][1]
    return merged


class CollectionIndex:
    """Each backend's own collection documents, for routing: ``{backend_id: {collection_id: document}}``."""

    def __init__(self, by_backend: Mapping[str, Mapping[str, Mapping]]):
        self.by_backend = {b: dict(docs) for b, docs in by_backend.items()}

    @classmethod
    def from_listings(cls, listings: Mapping[str, Mapping]) -> "CollectionIndex":
        return cls({b: {c["id"]: c for c in _entries(listing)} for b, listing in listings.items()})

    @property
    def backend_ids(self) -> list[str]:
        return sorted(self.by_backend)

    def backends_of(self, collection_id: str) -> list[str]:
        return sorted(b for b, docs in self.by_backend.items() if collection_id in docs)

    def has(self, backend_id: str, collection_id: str) -> bool:
        return collection_id in self.by_backend.get(backend_id, {})

    def document(self, collection_id: str, backend_id: str) -> Mapping | None:
        return self.by_backend.get(backend_id, {}).get(collection_id)


@dataclass(frozen=True)
class CollectionListing:
    document: dict  # the merged GET /collections answer
    conflicts: tuple[Conflict, ...]
    index: CollectionIndex


def _entries(listing: Mapping) -> Iterable[Mapping]:
    for entry in listing.get("collections") or ():
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            yield entry


def merge_collection_listings(listings: Mapping[str, Mapping], *, root_url: str,
                              weights: Mapping[str, float] | None = None,
                              backend_urls: Mapping[str, str] | None = None,
                              missing: Iterable[str] = ()) -> CollectionListing:
    """``{backend_id: GET /collections answer}`` -> every collection once, ordered by id, each merged as
    ``merge_collection`` does; ``missing`` backends are listed in ``federation:missing``."""
    index = CollectionIndex.from_listings(listings)
    urls = dict(backend_urls or {})
    for backend_id, listing in listings.items():  # entries may lack a root link; the listing has one
        urls.setdefault(backend_id, backend_root(listing, None) or "")
    grouped: dict[str, dict[str, Mapping]] = {}
    for backend_id, docs in index.by_backend.items():
        for collection_id, doc in docs.items():
            grouped.setdefault(collection_id, {})[backend_id] = doc
    collections, conflicts = [], []
    for collection_id in sorted(grouped):
        merged = merge_collection(collection_id, grouped[collection_id], root_url=root_url, weights=weights,
                                  backend_urls=urls)
        collections.append(merged.document)
        conflicts.extend(merged.conflicts)
    document = with_missing({"collections": collections, "links": own_links(root_url, "collections")}, missing)
    return CollectionListing(document, tuple(conflicts), index)
