"""The service interfaces behind the shared openEO views (``apicore/views/``).

The views parse, authorise and serialise; everything else is behind these interfaces, implemented once
by the backend (``backend/api_services/``: its stores, engine and runner) and once by the aggregator
(fan-out, merge, route, proxy). An app carries its implementation as an ``OpenEOServices`` in
``app.extensions["openeo"]``.

Rules every implementation follows:
- JSON dicts in and out. Listing documents may carry extra top-level fields (``federation:missing``)
  and their entries extra keys (``federation:backends``): the views pass them through untouched.
- The caller (anything with ``user_id`` and ``name``) and the API root URL (``root``, no trailing slash,
  e.g. ``http://host/openeo/1.2``) are passed explicitly: no Flask ``g`` or ``request`` in services.
- Failures are openEO errors (``apicore.errors``): the views render them.
- Thread-safe: web workers are threads.

Light on purpose: importing this module (or ``apicore.views``) loads no engine and nothing of ``backend``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Hashable, Iterable, NamedTuple, Protocol


class Caller(Protocol):
    """Who is calling: the backend's ``User`` row, the aggregator's federated caller."""

    user_id: str
    name: str


class Page(NamedTuple):
    """One page of a listing: the document (e.g. ``{"jobs": [...]}`` plus any extra top-level fields)
    and the opaque token of the next page (None on the last one). The views turn the token into the
    ``next`` link."""

    document: dict
    next: str | None = None


@dataclass
class Download:
    """A file answer (``POST /result``): a local file (``path``) or a stream (``chunks``, e.g. a proxied
    upstream body), its media type, the file name offered to clients, extra headers (``OpenEO-Costs``,
    ``OpenEO-Identifier``, ``Link``, ``Content-Disposition``, ...) and ``cleanup``: what to do once the
    body no longer needs it (delete a temporary directory, close an upstream connection). The view runs
    it as soon as it has opened a local file, and when the server closes a stream (sent or abandoned)."""

    media_type: str
    path: str | os.PathLike | None = None
    chunks: Iterable[bytes] | None = None
    filename: str | None = None
    size: int | None = None  # of a stream, when known (Content-Length)
    headers: dict[str, str] = field(default_factory=dict)
    cleanup: Callable[[], None] | None = None

    def close(self) -> None:
        if self.cleanup is not None:
            cleanup, self.cleanup = self.cleanup, None
            cleanup()


class DiscoveryService(Protocol):
    def capabilities(self) -> dict:
        """The implementation's fields of ``GET /``: ``id``, ``title``, ``description``,
        ``backend_version``, ``billing``; optionally ``conformsTo`` (classes beyond the openEO/STAC core
        ones) and ``federation`` (backend id -> details). The view adds the rest (endpoints, links)."""

    def capabilities_version(self) -> Hashable | None:
        """Changes whenever ``capabilities()`` may: ``GET /`` is serialised once per version and API
        root. None: built per request."""

    def health(self) -> dict:
        """``GET /health`` (no authentication): ``{"status": "ok", ...}`` answers 200, any other status 503."""


class AccountService(Protocol):
    def authenticate(self, authorization: str | None) -> Caller | None:
        """The caller of an ``Authorization`` header; None without one; an openEO error for a bad one."""

    def basic_login(self, name: str, password: str) -> dict:
        """``GET /credentials/basic``: ``{"access_token", "expires_in"}``, or CredentialsInvalid."""

    def oidc_providers(self) -> list[dict]:
        """The ``providers`` of ``GET /credentials/oidc``; none: that route is not offered."""

    def me(self, caller: Caller, root: str) -> dict:
        """``GET /me``."""


class CollectionsService(Protocol):
    def version(self) -> Hashable | None:
        """Changes whenever collection documents may: the full listing and each collection are
        serialised once per version and API root. None: built per request."""

    def listing(self, root: str) -> dict:
        """``{"collections": [every collection summary], ...}``; the view pages it (limit/offset) and
        adds the links."""

    def describe(self, collection_id: str, root: str) -> dict: ...

    def queryables(self, collection_id: str, root: str) -> dict: ...


class ProcessesService(Protocol):
    def version(self) -> Hashable | None:
        """Changes whenever ``listing()`` or ``file_formats()`` may (see CollectionsService.version)."""

    def listing(self, root: str) -> dict:
        """``{"processes": [every predefined process], ...}`` (the view adds the links)."""

    def file_formats(self) -> dict: ...

    def udf_runtimes(self) -> dict: ...

    def is_predefined(self, process_id: str) -> bool:
        """Whether a user-defined process may not take this id."""


class UdpService(Protocol):
    """The caller's user-defined processes; ids and specs arrive checked by the views."""

    def listing(self, caller: Caller, root: str) -> dict:
        """``{"processes": [full specs], ...}``; the view reduces each to its summary fields."""

    def get(self, caller: Caller, process_id: str) -> dict | None: ...

    def put(self, caller: Caller, process_id: str, spec: dict) -> None: ...

    def delete(self, caller: Caller, process_id: str) -> bool:
        """False when the caller has no such process."""


class ProcessingService(Protocol):
    def result(self, caller: Caller, body: dict, root: str) -> Download:
        """``POST /result``: run the request body's ``process`` (with its ``plan``/``budget``) now."""

    def validate(self, caller: Caller | None, body: dict, root: str) -> dict:
        """``POST /validation``: ``{"errors": [...]}``; anonymous callers have no user-defined processes."""


class JobsService(Protocol):
    """Batch jobs of the caller. Job fields arrive type-checked by the views (``views/job_fields.py``);
    the process graph, plan and budget are the implementation's to check."""

    def listing(self, caller: Caller, root: str, limit: int | None, page: str | None = None,
                offset: int = 0) -> Page:
        """Newest first, ``{"jobs": [job documents]}`` (the view keeps their listed fields). ``page``: an
        opaque token from a previous ``next`` (it wins); ``offset``: a client's plain offset, accepted for
        compatibility (an implementation whose pages are not offsets may refuse a non-zero one)."""

    def create(self, caller: Caller, fields: dict, root: str) -> "str | tuple[str, dict[str, str]]":
        """The new job's id, or the id and extra response headers (e.g. the aggregator's routing choice)."""

    def describe(self, caller: Caller, job_id: str, root: str) -> dict: ...

    def update(self, caller: Caller, job_id: str, changes: dict, root: str) -> None: ...

    def delete(self, caller: Caller, job_id: str) -> None: ...

    def start(self, caller: Caller, job_id: str, root: str) -> None:
        """Queue the job (no effect when queued or running)."""

    def stop(self, caller: Caller, job_id: str) -> None: ...

    def logs(self, caller: Caller, job_id: str, root: str, offset: str | None, level: str,
             limit: int | None) -> Page:
        """``{"level", "logs": [...]}`` after entry ``offset`` (the id of an entry as a string, unchecked;
        None: from the start); ``next``: the id of the last entry returned when more follow."""

    def estimate(self, caller: Caller, job_id: str, root: str) -> dict: ...

    def results(self, caller: Caller, job_id: str, root: str, partial: bool) -> tuple[dict, int]:
        """``GET /jobs/{id}/results``: the document and its HTTP status (424 with the error log entry of
        a failed job)."""


class FilesService(Protocol):
    """The caller's file workspace (``/files``). Paths arrive checked by the views
    (``apicore/file_paths.py``): relative, ``/``-separated, safe names only."""

    def listing(self, caller: Caller, limit: int | None, page: str | None) -> Page:
        """``{"files": [{"path", "size", "modified"}]}`` sorted by path; ``page``: an opaque token from a
        previous ``next``."""

    def download(self, caller: Caller, path: str) -> Download:
        """The file (FileNotFound; FileOperationUnsupported for a folder)."""

    def upload(self, caller: Caller, path: str, body: BinaryIO, length: int | None) -> dict:
        """Store ``body`` (read in blocks, never whole; ``length``: its Content-Length when sent) at ``path``,
        replacing a file there; the new file's entry. All or nothing: a failed or refused upload
        (StorageQuotaExceeded) leaves no trace and any previous file in place."""

    def delete(self, caller: Caller, path: str) -> None:
        """Delete a file and the folders it leaves empty (FileNotFound; FileOperationUnsupported for a folder)."""


@dataclass(frozen=True)
class OpenEOServices:
    """One implementation of every interface, and where the API is mounted."""

    discovery: DiscoveryService
    account: AccountService
    collections: CollectionsService
    processes: ProcessesService
    udps: UdpService
    processing: ProcessingService
    jobs: JobsService
    api_prefix: str  # e.g. /openeo/1.2
    files: FilesService | None = None  # None: no /files routes (and none listed in the capabilities)
    public_url: str | None = None  # the server's public base URL; None: from the request's Host
