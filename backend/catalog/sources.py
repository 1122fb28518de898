"""Where collections come from: static STAC catalogs (pystac) and STAC APIs (pystac-client).

A source answers with plain STAC dicts, so the metadata code does not care which kind it is.
"""

from __future__ import annotations

import itertools
import logging
from typing import Iterable, Protocol

import pystac
import pystac_client

from backend.settings import StacSource

log = logging.getLogger(__name__)

SAMPLE_ITEMS = 20


class CollectionSource(Protocol):
    url: str

    def collection_ids(self) -> list[str]: ...

    def collection(self, stac_id: str) -> dict | None: ...

    def sample_items(self, stac_id: str, limit: int = SAMPLE_ITEMS) -> list[dict]: ...


class StaticCatalogSource:
    """A static catalog on disk or at a URL; items are filtered in Python (no search API)."""

    def __init__(self, url: str, allowed: list[str] | None = None):
        self.url = url
        self.allowed = set(allowed) if allowed is not None else None
        catalog = pystac.Catalog.from_file(url)
        self._collections = {c.id: c for c in catalog.get_all_collections() if self._is_allowed(c.id)}

    def _is_allowed(self, stac_id: str) -> bool:
        return self.allowed is None or stac_id in self.allowed

    def collection_ids(self) -> list[str]:
        return list(self._collections)

    def collection(self, stac_id: str) -> dict | None:
        collection = self._collections.get(stac_id)
        return collection.to_dict(include_self_link=False, transform_hrefs=True) if collection else None

    def items(self, stac_id: str) -> Iterable[pystac.Item]:
        collection = self._collections.get(stac_id)
        return collection.get_items(recursive=True) if collection else []

    def sample_items(self, stac_id: str, limit: int = SAMPLE_ITEMS) -> list[dict]:
        return [item.to_dict(transform_hrefs=True) for item in itertools.islice(self.items(stac_id), limit)]


class StacApiSource:
    """A STAC API; collections are listed and fetched lazily, items come from item search."""

    def __init__(self, url: str, allowed: list[str] | None = None):
        self.url = url
        self.allowed = list(allowed) if allowed is not None else None
        self._client: pystac_client.Client | None = None

    @property
    def client(self) -> pystac_client.Client:
        # Opened on first use: an API that is down at start-up must not keep the backend from starting.
        if self._client is None:
            self._client = pystac_client.Client.open(self.url)
        return self._client

    def collection_ids(self) -> list[str]:
        if self.allowed is not None:
            return list(self.allowed)
        return [c.id for c in self.client.get_collections()]

    def collection(self, stac_id: str) -> dict | None:
        if self.allowed is not None and stac_id not in self.allowed:
            return None
        try:
            collection = self.client.get_collection(stac_id)
        except Exception as exc:  # pystac-client raises APIError or plain HTTP errors for unknown ids
            log.info("collection %s not available from %s: %s", stac_id, self.url, exc)
            return None
        return collection.to_dict(include_self_link=False) if collection is not None else None

    def sample_items(self, stac_id: str, limit: int = SAMPLE_ITEMS) -> list[dict]:
        search = self.client.search(collections=[stac_id], max_items=limit, limit=limit)
        return [item.to_dict() for item in search.items()]


def open_source(config: StacSource) -> CollectionSource:
    if config.kind == "static":
        return StaticCatalogSource(config.url, config.collections)
    return StacApiSource(config.url, config.collections)
