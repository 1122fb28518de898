"""The collections a backend offers: openEO ids mapped onto (source, STAC id), metadata cached with a TTL."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apicore import errors
from apicore.cache import Cache
from backend.catalog.metadata import collection_summary, to_openeo_collection
from backend.catalog.queryables import queryables
from backend.catalog.sources import CollectionSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectionRef:
    openeo_id: str
    stac_id: str
    source: CollectionSource


class CollectionRegistry:
    def __init__(self, sources: list[tuple[CollectionSource, dict[str, str]]], cache: Cache):
        """``sources``: each source with its id map (openEO id -> STAC id)."""
        self._sources = sources
        self._cache = cache

    def refs(self) -> dict[str, CollectionRef]:
        return self._cache.get_or_call(("refs",), self._collect_refs)

    def _collect_refs(self) -> dict[str, CollectionRef]:
        refs: dict[str, CollectionRef] = {}
        for source, id_map in self._sources:
            reverse = {stac_id: openeo_id for openeo_id, stac_id in id_map.items()}
            try:
                stac_ids = source.collection_ids()
            except Exception as exc:  # one unreachable source must not hide the others
                log.warning("collection source %s unavailable: %s", source.url, exc)
                continue
            for stac_id in stac_ids:
                openeo_id = reverse.get(stac_id, stac_id)
                refs.setdefault(openeo_id, CollectionRef(openeo_id, stac_id, source))
        return refs

    def ref(self, openeo_id: str) -> CollectionRef:
        ref = self.refs().get(openeo_id)
        if ref is None:
            raise errors.CollectionNotFound(identifier=openeo_id)
        return ref

    def describe(self, openeo_id: str, api_root: str) -> dict:
        ref = self.ref(openeo_id)

        def compute() -> dict:
            stac = ref.source.collection(ref.stac_id)
            if stac is None:
                raise errors.CollectionNotFound(identifier=openeo_id)
            return to_openeo_collection(stac, openeo_id, api_root)

        return self._cache.get_or_call(("collection", openeo_id, api_root), compute)

    def list(self, api_root: str) -> list[dict]:
        summaries = []
        for openeo_id in sorted(self.refs()):
            try:
                summaries.append(collection_summary(self.describe(openeo_id, api_root)))
            except errors.CollectionNotFound:
                log.warning("collection %s disappeared from its source", openeo_id)
        return summaries

    def queryables(self, openeo_id: str, api_root: str) -> dict:
        ref = self.ref(openeo_id)
        return self._cache.get_or_call(
            ("queryables", openeo_id, api_root),
            lambda: queryables(openeo_id, ref.source.sample_items(ref.stac_id), api_root))
