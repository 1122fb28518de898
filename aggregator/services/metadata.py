"""The federation's collections and processes (apicore.services.CollectionsService, ProcessesService):
the backends' documents fanned out, cached per backend and merged (aggregator/metadata.py)."""

from __future__ import annotations

from typing import Hashable
from urllib.parse import quote

from aggregator.federation.errors import UpstreamError
from aggregator.merging.common import preference
from aggregator.parts import AggregatorParts
from apicore import errors


class FederationCollections:
    def __init__(self, parts: AggregatorParts):
        self.parts = parts

    def version(self) -> Hashable:
        return self.parts.metadata.version("collections")

    def listing(self, root: str) -> dict:
        return self.parts.metadata.collections(root).document

    def describe(self, collection_id: str, root: str) -> dict:
        """Asked only of the backends whose listing has it (in parallel); merged from those that answer."""
        holders = self._holders(collection_id)
        metadata = self.parts.metadata
        path = f"collections/{quote(collection_id, safe='')}"
        answer = self.parts.federation.fan_out(lambda upstream: metadata.cached(upstream, path).document,
                                               backend_ids=holders)
        if not answer.successes:
            raise _first_failure(answer.failures, holders)
        return metadata.collection(collection_id, answer.successes, root)

    def queryables(self, collection_id: str, root: str) -> dict:
        """The queryables of the most preferred backend that has the collection and answers."""
        failures: dict[str, UpstreamError] = {}
        holders = self._holders(collection_id)
        for backend_id in holders:
            upstream = self.parts.federation.upstreams.get(backend_id)
            if upstream is None:
                continue
            try:
                return self.parts.metadata.cached(upstream, f"collections/{quote(collection_id, safe='')}/queryables"
                                                  ).document
            except UpstreamError as error:
                failures[backend_id] = error
        raise _first_failure(failures, holders)

    def _holders(self, collection_id: str) -> list[str]:
        index, missing = self.parts.metadata.collection_index()
        holders = preference(index.backends_of(collection_id), self.parts.metadata.weights())
        if not holders:
            note = (f" Backend(s) {', '.join(missing)} did not answer: it may be on them; try again later."
                    if missing else "")
            raise errors.CollectionNotFound(f"Collection '{collection_id}' does not exist on any backend of the "
                                            f"federation (see GET /collections).{note}", identifier=collection_id)
        return holders


def _first_failure(failures: dict[str, UpstreamError], holders: list[str]) -> errors.OpenEOError:
    """The error of the most preferred backend that failed (its own status and code, naming it)."""
    for backend_id in holders:
        if backend_id in failures:
            return failures[backend_id]
    return errors.CollectionNotFound(f"None of the backends offering it ({', '.join(holders)}) is part of the "
                                     "federation any more.", identifier="")


class FederationProcesses:
    def __init__(self, parts: AggregatorParts):
        self.parts = parts

    def version(self) -> Hashable:
        return self.parts.metadata.version("processes", "file_formats")

    def listing(self, root: str) -> dict:
        return self.parts.metadata.processes(root).document

    def file_formats(self) -> dict:
        return self.parts.metadata.file_formats()

    def udf_runtimes(self) -> dict:
        return self.parts.metadata.udf_runtimes()

    def is_predefined(self, process_id: str) -> bool:
        """Offered by any backend that answered (a UDP may not take a predefined process's id)."""
        return any(process_id in ids for ids in self.parts.metadata.process_ids().values())

