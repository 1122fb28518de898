"""Federated job ids: which backend holds a job, carried in the id itself (no table, stable across restarts).

Two forms, told apart by a versioned prefix before the first ``-``:

``j1-<base32>``  a job on one backend. The base32 (RFC 4648, lower case, no padding) holds the UTF-8 of
                 ``<backend id>:<backend job id>`` followed by a 3-byte BLAKE2s check, so a mistyped or
                 truncated id is recognised as malformed instead of naming some other job. Lower-case
                 base32 rather than base64url: clients name folders after job ids (``job_<id>``), and on
                 case-insensitive file systems two base64 ids differing only in case would collide.
``s1-<record>``  a split job (parts on several backends). Its parts need state (which parts, where, in
                 which order they run), so the id names an aggregator-side record (``[a-z0-9]{1,64}``,
                 e.g. a uuid4's hex) kept in the aggregator's database; ``locate`` returns a
                 ``SplitJobRef`` for the job service to look up.

Both match the openEO ``job_id`` pattern ``^[\\w\\-\\.~]+$``. The ids are opaque to users (nothing in the
API promises their structure) but reversible here; a future format gets a new prefix (``j2``) and the
old ones keep decoding. Anything that does not decode is an unknown job (404 ``JobNotFound``); an id
that decodes to a backend no longer in the federation says so, so a user whose jobs lived on a removed
backend learns why they cannot be reached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Collection

from apicore import errors

JOB_PREFIX = "j1"
SPLIT_PREFIX = "s1"
_CHECK_BYTES = 3
_BACKEND_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # BackendConfig.id
_BASE32 = re.compile(r"[a-z2-7]+")
_RECORD_ID = re.compile(r"[a-z0-9]{1,64}")
OPENEO_JOB_ID = re.compile(r"^[\w\-.~]+$")  # openapi.yaml, components.schemas.job_id


@dataclass(frozen=True)
class BackendJobRef:
    """A job on one backend: ``job_id`` is that backend's own id."""

    backend_id: str
    job_id: str

    @property
    def federated_id(self) -> str:
        return encode(self.backend_id, self.job_id)


@dataclass(frozen=True)
class SplitJobRef:
    """A split job: ``record_id`` names the aggregator's record of its parts."""

    record_id: str

    @property
    def federated_id(self) -> str:
        return split_job_id(self.record_id)


JobRef = BackendJobRef | SplitJobRef


def _check(payload: bytes) -> bytes:
    return hashlib.blake2s(payload, digest_size=_CHECK_BYTES, person=b"oeojob1").digest()


def encode(backend_id: str, job_id: str) -> str:
    """The federated id of job ``job_id`` on backend ``backend_id``."""
    if not _BACKEND_ID.fullmatch(backend_id):
        raise ValueError(f"not a backend id: {backend_id!r}")
    if not job_id:
        raise ValueError("a backend job id must not be empty")
    payload = f"{backend_id}:{job_id}".encode("utf-8")
    text = base64.b32encode(payload + _check(payload)).decode("ascii").rstrip("=").lower()
    return f"{JOB_PREFIX}-{text}"


def split_job_id(record_id: str) -> str:
    """The federated id of the split job recorded as ``record_id``."""
    if not _RECORD_ID.fullmatch(record_id):
        raise ValueError(f"a split job record id is 1 to 64 lower-case letters and digits, not {record_id!r}")
    return f"{SPLIT_PREFIX}-{record_id}"


def decode(federated_id: str) -> JobRef:
    """What ``federated_id`` names, without checking that its backend exists; 404 if it is no federated id."""
    if not isinstance(federated_id, str):
        raise _not_ours(str(federated_id))
    prefix, _, body = federated_id.partition("-")
    if prefix == SPLIT_PREFIX and _RECORD_ID.fullmatch(body):
        return SplitJobRef(body)
    if prefix != JOB_PREFIX or not _BASE32.fullmatch(body):
        raise _not_ours(federated_id)
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise _not_ours(federated_id) from None
    payload, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if len(raw) <= _CHECK_BYTES or _check(payload) != check:
        raise _not_ours(federated_id)
    try:
        backend_id, separator, job_id = payload.decode("utf-8").partition(":")
    except UnicodeDecodeError:
        raise _not_ours(federated_id) from None
    if not separator or not _BACKEND_ID.fullmatch(backend_id) or not _usable_job_id(job_id):
        raise _not_ours(federated_id)
    ref = BackendJobRef(backend_id, job_id)
    if ref.federated_id != federated_id:  # one spelling per job (e.g. no stray bits in the last character)
        raise _not_ours(federated_id)
    return ref


def _usable_job_id(job_id: str) -> bool:
    """A backend job id that names one resource under the backend's ``jobs/``. Other backends' ids need not
    follow the openEO pattern, but the check bytes are no secret: anyone can make a valid federated id for
    any backend job id, and one such as ``..``, ``/`` (decoded from %2F by many servers) or a control
    character would make the aggregator call another resource of the backend with the user's credentials
    (``jobs/..`` is its API root)."""
    return job_id not in (".", "..") and not any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in job_id)


def locate(federated_id: str, backends: Collection[str]) -> JobRef:
    """``decode``, and for a one-backend job check that its backend is still one of ``backends``."""
    ref = decode(federated_id)
    if isinstance(ref, BackendJobRef) and ref.backend_id not in backends:
        raise errors.JobNotFound(
            f"The batch job '{federated_id}' was created on backend '{ref.backend_id}', which is no longer part "
            "of this federation: the job and its results cannot be reached through it any more. Its current "
            "backends are listed under `federation` in GET /.", identifier=federated_id)
    return ref


def owner_of(federated_id: str, backends: Collection[str]) -> str | None:
    """The backend holding a one-backend job (for routing's ``job_backend``); None for other ids."""
    try:
        ref = locate(federated_id, backends)
    except errors.OpenEOError:
        return None
    return ref.backend_id if isinstance(ref, BackendJobRef) else None


def _not_ours(federated_id: str) -> errors.OpenEOError:
    shown = federated_id if len(federated_id) <= 200 else federated_id[:200] + "…"
    return errors.JobNotFound(f"The batch job '{shown}' does not exist: it is not a job id of this federation. "
                              "Use the ids given by POST /jobs and GET /jobs.", identifier=shown)
