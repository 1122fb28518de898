"""The backend's collections and processes (apicore.services.CollectionsService, ProcessesService)."""

from __future__ import annotations

import time

from backend.processing.file_formats import file_formats
from backend.services import Services


class BackendCollections:
    def __init__(self, parts: Services):
        self.parts = parts

    def version(self) -> int | None:
        # Documents change only when the metadata cache refreshes: serialise them once per TTL period.
        ttl = self.parts.settings.collection_cache_ttl
        return int(time.monotonic() // ttl) if ttl else None

    def listing(self, root: str) -> dict:
        return {"collections": self.parts.collections.list(root)}

    def describe(self, collection_id: str, root: str) -> dict:
        return self.parts.collections.describe(collection_id, root)

    def queryables(self, collection_id: str, root: str) -> dict:
        return self.parts.collections.queryables(collection_id, root)


class BackendProcesses:
    """What the engine implements; fixed for the life of the process."""

    def __init__(self, parts: Services):
        self.parts = parts

    def version(self) -> int:
        return 0

    def listing(self, root: str) -> dict:
        return {"processes": self.parts.processes.specs()}

    def file_formats(self) -> dict:
        return file_formats()

    def udf_runtimes(self) -> dict:
        from backend.processing.udf.runtimes import udf_runtimes

        return udf_runtimes()

    def is_predefined(self, process_id: str) -> bool:
        return process_id in self.parts.processes
