"""The openEO errors of a split graph's parts: each names the part (node and collection) and its backend."""

from __future__ import annotations

from apicore.errors import OpenEOError


class SplitPartFailed(OpenEOError):
    """A part could not be run, or ran and failed. Status: the backend's own for a refused submission (e.g.
    400 for an invalid argument), 424 (failed dependency) for a part job that ended in ``error``."""

    code = "FederationSplitPartFailed"
    status = 424
    template = ("Part '{node}' of the split process graph (load_collection of {collection} on backend "
                "'{backend_id}') failed: {reason}")

    def __init__(self, node: str, collection: str, backend_id: str, reason: str, status: int | None = None):
        if status is not None:
            self.status = status
        super().__init__(node=node, collection=collection, backend_id=backend_id, reason=reason)


class SplitPartTimeout(OpenEOError):
    code = "FederationSplitPartTimeout"
    status = 504
    template = ("Part '{node}' of the split process graph (load_collection of {collection} on backend "
                "'{backend_id}') did not finish within {seconds} s; its job was deleted. Request a smaller "
                "extent, or run the graph as a batch job.")

    def __init__(self, node: str, collection: str, backend_id: str, seconds: float):
        super().__init__(node=node, collection=collection, backend_id=backend_id, seconds=f"{seconds:g}")
