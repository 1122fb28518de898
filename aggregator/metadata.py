"""The backends' metadata as the federation shows it: fetched in parallel, cached per backend, merged.

    metadata = FederatedMetadata(federation)
    metadata.collections(root)      # CollectionListing: merged document (federation:missing) + index
    metadata.processes(root)        # ProcessListing: merged document + each backend's process ids
    metadata.file_formats()         # merged GET /file_formats
    metadata.conflicts(root, kinds) # what the backends disagree on, from the merges above
    metadata.version("collections") # changes whenever the merged answer may

Each backend's document (``GET /collections``, ``/processes``, ``/file_formats``, ``/udf_runtimes``) is
cached under its own key in the federation's stale-while-revalidate cache, so a slow backend's refresh
never holds up the others, and a backend that fails is missing only from answers it has no usable value
for. A backend whose circuit is open is skipped at once (``federation:missing``) even with a cached value.

A *snapshot* is the fan-out over those caches: which document of which backend, and who is missing.
Each cached document carries a generation number, so a snapshot has a cheap identity (``Snapshot.key``):
the merge of a snapshot is done once per key and API root, and the views serialise the merged answer
once per key (``version``). A snapshot is reused for ``reuse`` seconds, so ``version()`` and the listing
of one request (and a burst of requests) share one fan-out: a backend that hangs costs one deadline,
not two.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Iterable

from cachetools import LRUCache

from aggregator.federation.errors import BackendErrorResponse, BackendResponseInvalid, UpstreamError
from aggregator.federation.upstream import Upstream
from aggregator.merging.collections import (CollectionIndex, CollectionListing, merge_collection,
                                             merge_collection_listings)
from aggregator.merging.common import FEDERATION_MISSING, Conflict, Merged
from aggregator.merging.file_formats import merge_file_formats
from aggregator.merging.processes import ProcessListing, merge_processes, offered_processes
from aggregator.merging.resource_maps import merge_udf_runtimes

if TYPE_CHECKING:
    from aggregator.federation.wiring import Federation

_generations = itertools.count(1)  # next() on a count is atomic under the GIL
OPTIONAL = frozenset({"udf_runtimes"})  # endpoints a backend may not offer: its 404 means "none"
# What the merges read of each document. A backend whose answer has something else there is missing from
# the merged answer (federation:missing), not taken as one with nothing to offer.
REQUIRED = {"collections": {"collections": list}, "processes": {"processes": list}}
OPTIONAL_FIELDS = {"file_formats": {"input": dict, "output": dict}}
CONFLICT_KINDS = ("collection", "process", "file_format", "udf_runtime")


@dataclass(frozen=True)
class _Versioned:
    generation: int
    document: dict


@dataclass(frozen=True)
class Snapshot:
    """One fan-out over the per-backend caches of one path."""

    path: str
    documents: dict[str, dict]  # backend id -> its document
    generations: tuple[tuple[str, int], ...]
    failures: dict[str, UpstreamError] = field(default_factory=dict)
    registry_version: int = 0

    @property
    def missing(self) -> list[str]:
        return sorted(self.failures)

    @property
    def key(self) -> Hashable:
        return (self.path, self.registry_version, self.generations, tuple(self.missing))


class FederatedMetadata:
    """Thread-safe; all state is cached shared data (nothing per request)."""

    def __init__(self, federation: "Federation", *, reuse: float = 1.0):
        self.federation = federation
        self.reuse = reuse
        self._lock = threading.Lock()
        self._snapshots: dict[str, tuple[float, Snapshot]] = {}
        self._taking: dict[str, threading.Lock] = {}  # per path: held while its snapshot is taken
        self._merged: LRUCache = LRUCache(maxsize=64)
        self._last_bodies: LRUCache = LRUCache(maxsize=256)  # (path, backend) -> (body digest, _Versioned)

    # -- snapshots --

    def snapshot(self, path: str) -> Snapshot:
        if self._reusable(path):
            with self._lock:
                return self._snapshots[path][1]
        with self._lock:
            path_lock = self._taking.setdefault(path, threading.Lock())
        # One fan-out per path at a time: the requests arriving meanwhile take its snapshot (each taking
        # its own made 8 concurrent clients fan out 8 times and merge 8 versions: p99 of seconds).
        with path_lock:
            if self._reusable(path):
                with self._lock:
                    return self._snapshots[path][1]
            version = self.federation.registry.version
            answer = self.federation.fan_out(lambda upstream: self.cached(upstream, path))
            snapshot = Snapshot(path, {b: v.document for b, v in answer.successes.items()},
                                tuple(sorted((b, v.generation) for b, v in answer.successes.items())),
                                dict(answer.failures), version)
            with self._lock:
                self._snapshots[path] = (time.monotonic(), snapshot)
            return snapshot

    def cached(self, upstream: Upstream, path: str) -> _Versioned:
        """One backend's document at ``path`` through the federation's cache (stale-while-revalidate)."""
        key = ("metadata", path, upstream.id, upstream.config.url)
        return self.federation.metadata_cache.get_or_call(key, lambda: self._fetch(upstream, path, key))

    def _fetch(self, upstream: Upstream, path: str, key: Hashable) -> _Versioned:
        """The backend's document, fetched anew. A body byte-identical to the last one keeps its parsed
        document and generation: nothing is parsed, and the merged answers built on it stay valid (an
        uncached listing of unchanged backends costs the fan-out, not a re-merge)."""
        try:
            response = upstream.request("GET", path)
        except BackendErrorResponse as error:
            if path in OPTIONAL and error.status == 404:  # an endpoint it does not offer: none
                return _Versioned(next(_generations), {})
            raise
        digest = hashlib.blake2b(response.content, digest_size=16).digest()
        with self._lock:
            last = self._last_bodies.get(key)
        if last is not None and last[0] == digest:
            return last[1]
        versioned = _Versioned(next(_generations), _usable(upstream, path,
                                                          upstream.json_object(response, f"GET /{path}")))
        with self._lock:
            self._last_bodies[key] = (digest, versioned)
        return versioned

    def version(self, *paths: str) -> Hashable:
        """Changes whenever the merged answer of any of ``paths`` may. Stale snapshots of several paths
        are taken in parallel: one after the other, /processes (with /file_formats) waited twice for the
        slowest backend when uncached."""
        taken: dict[str, Snapshot] = {}

        def take(path: str) -> None:
            taken[path] = self.snapshot(path)  # one key per thread: no lock needed

        helpers = [threading.Thread(target=take, args=(path,), name="snapshot", daemon=True)
                   for path in paths[1:] if not self._reusable(path)]
        for helper in helpers:
            helper.start()
        take(paths[0])
        for helper in helpers:
            helper.join()
        return tuple((taken.get(path) or self.snapshot(path)).key for path in paths)

    def _reusable(self, path: str) -> bool:
        with self._lock:
            taken = self._snapshots.get(path)
        return (taken is not None and time.monotonic() - taken[0] < self.reuse
                and taken[1].registry_version == self.federation.registry.version)

    def _memo(self, slot: Hashable, snapshot_key: Hashable, build) -> Any:
        """``build()`` once per snapshot; only the latest per ``slot`` is kept (a merged 3 x 300 collections
        listing is tens of MB of Python objects: 64 old ones made a worker grow by hundreds of MB)."""
        with self._lock:
            found = self._merged.get(slot)
        if found is not None and found[0] == snapshot_key:
            return found[1]
        value = build()
        with self._lock:
            self._merged[slot] = (snapshot_key, value)
        return value

    # -- the merged answers --

    def collections(self, root: str) -> CollectionListing:
        snapshot = self.snapshot("collections")
        return self._memo(("collections", root), snapshot.key, lambda: merge_collection_listings(
            self._allowed_collections(snapshot.documents), root_url=root, weights=self.weights(),
            backend_urls=self.urls(), missing=snapshot.missing))

    def collection(self, collection_id: str, documents: dict[str, dict], root: str) -> dict:
        """One collection merged from the documents of the backends that described it."""
        return merge_collection(collection_id, documents, root_url=root, weights=self.weights(),
                                backend_urls=self.urls()).document

    def collection_index(self) -> tuple[CollectionIndex, list[str]]:
        """Each answering backend's collections (after its rules), for routing; and the missing backends."""
        snapshot = self.snapshot("collections")
        index = self._memo("collection_index", snapshot.key,
                           lambda: CollectionIndex.from_listings(self._allowed_collections(snapshot.documents)))
        return index, snapshot.missing

    def process_ids(self) -> dict[str, frozenset[str]]:
        """The process ids each answering backend offers (after its deny rules), for routing."""
        snapshot = self.snapshot("processes")
        rules = {backend.id: backend.processes for backend in self.federation.registry.snapshot()}
        return self._memo("process_ids", snapshot.key, lambda: {
            backend_id: frozenset(offered_processes(listing, rules.get(backend_id)))
            for backend_id, listing in snapshot.documents.items()})

    def processes(self, root: str) -> ProcessListing:
        snapshot = self.snapshot("processes")
        rules = {backend.id: backend.processes for backend in self.federation.registry.snapshot()}
        return self._memo(("processes", root), snapshot.key, lambda: merge_processes(
            snapshot.documents, root_url=root, rules=rules, weights=self.weights(), backend_urls=self.urls(),
            missing=snapshot.missing, federation=self.federation.registry.ids()))

    def file_formats(self) -> dict:
        return self._file_formats().document

    def udf_runtimes(self) -> dict:
        return self._udf_runtimes().document

    def _file_formats(self) -> Merged[dict]:
        snapshot = self.snapshot("file_formats")
        return self._memo("file_formats", snapshot.key, lambda: merge_file_formats(
            snapshot.documents, weights=self.weights(), missing=snapshot.missing,
            federation=self.federation.registry.ids()))

    def _udf_runtimes(self) -> Merged[dict]:
        snapshot = self.snapshot("udf_runtimes")
        return self._memo("udf_runtimes", snapshot.key, lambda: merge_udf_runtimes(
            snapshot.documents, weights=self.weights(), federation=self.federation.registry.ids()))

    def conflicts(self, root: str, kinds: Iterable[str] = CONFLICT_KINDS) -> tuple[list[Conflict], list[str]]:
        """The conflicts of the merged listings of ``kinds`` (kept with each merge: nothing is merged
        again while the backends' documents stay the same) and the backends missing from them."""
        merges = {"collection": lambda: self.collections(root), "process": lambda: self.processes(root),
                  "file_format": self._file_formats, "udf_runtime": self._udf_runtimes}
        found: list[Conflict] = []
        missing: set[str] = set()
        for kind in kinds:
            merged = merges[kind]()
            found.extend(merged.conflicts)
            # the merged document names its missing backends; /udf_runtimes has no room for them
            missing.update(merged.document.get(FEDERATION_MISSING, ()) if kind != "udf_runtime"
                           else self.snapshot("udf_runtimes").missing)
        return found, sorted(missing)

    # -- helpers --

    def weights(self) -> dict[str, float]:
        return {backend.id: backend.weight for backend in self.federation.registry.snapshot()}

    def urls(self) -> dict[str, str]:
        return {backend.id: backend.url for backend in self.federation.registry.snapshot()}

    def _allowed_collections(self, documents: dict[str, dict]) -> dict[str, dict]:
        """Each backend's listing without the collections its operator's rules hide."""
        registry = self.federation.registry
        allowed = {}
        for backend_id, listing in documents.items():
            config = registry.get(backend_id)
            entries = listing.get("collections") if isinstance(listing.get("collections"), list) else []
            allowed[backend_id] = {**listing, "collections": [
                entry for entry in entries if isinstance(entry, dict) and isinstance(entry.get("id"), str)
                and (config is None or config.collections.allows(entry["id"]))]}
        return allowed


def _usable(upstream: Upstream, path: str, document: dict) -> dict:
    """``document`` if the merges can use it; else the backend's invalid answer (counted for its health)."""
    fields = [(name, kind, True) for name, kind in REQUIRED.get(path, {}).items()]
    fields += [(name, kind, False) for name, kind in OPTIONAL_FIELDS.get(path, {}).items()]
    for name, kind, required in fields:
        value = document.get(name)
        if isinstance(value, kind) or (value is None and not required):
            continue
        shape = "an array" if kind is list else "an object"
        error = BackendResponseInvalid(upstream.id, f"GET /{path}: '{name}' is not {shape}")
        upstream.record_failure(error)
        raise error
    return document
