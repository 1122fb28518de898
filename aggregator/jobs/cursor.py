"""The opaque page token of the merged job listing (``GET /jobs?page=...``): signed, scoped, validated.

The token carries, per backend, where the listing stands (see ``listing.py``): the sort key of the last
job taken from it, the backend's own paging token of the page to resume from, and flags. It is JSON,
compressed when that helps, signed with HMAC (itsdangerous, keyed by the aggregator's secret key) and
URL-safe (``[A-Za-z0-9_.-]``). The signature makes it tamper-evident: the backend paging tokens inside
(offsets, or next links the service will request) come back exactly as the aggregator wrote them. A token
is also bound to a scope (the user's id) so one user's token is no use to another. A token that fails
any check is a 400 ``PageTokenInvalid`` telling the client to start the listing again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

from itsdangerous import BadData, URLSafeSerializer

from apicore.errors import OpenEOError

VERSION = 1
SALT = "openeo-aggregator/job-listing"
MAX_TOKEN_CHARS = 8192

SortKey = tuple  # (no created?, -created in µs, federated id): ascending = newest first, ties by id


class PageTokenInvalid(OpenEOError):
    code = "PageTokenInvalid"
    status = 400
    template = ("The page token is not valid ({reason}). Request the first page again (GET /jobs without "
                "'page') and follow the 'next' links of the answers.")


@dataclass(frozen=True)
class Position:
    """Where the listing stands on one backend.

    ``last``: sort key of the last job taken from it (None: none yet); every job of that backend that
    sorts at or before it has been listed. ``resume``: the backend's paging token of the page to read
    next (None: its first page). ``done``: nothing more to list there. ``whole``: the backend does not
    list newest first, so it is read whole and sorted here.
    """

    last: SortKey | None = None
    resume: str | None = None
    done: bool = False
    whole: bool = False


@dataclass(frozen=True)
class ListingState:
    positions: Mapping[str, Position]
    last: SortKey | None  # sort key of the last job of the previous page (for backends new to the listing)


def _key_json(key: SortKey | None) -> list | None:
    return None if key is None else [None if key[0] else -key[1], key[2]]


def _key_from(value: Any) -> SortKey | None:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str)
            or not (value[0] is None or (isinstance(value[0], int) and not isinstance(value[0], bool)))):
        raise ValueError("a sort key is [created µs or null, id]")
    return sort_key(value[0], value[1])


def sort_key(created_us: int | None, federated_id: str) -> SortKey:
    """Newest first, jobs without a creation time last, ties by federated id."""
    return (created_us is None, -(created_us or 0), federated_id)


class CursorCodec:
    """Turns a ``ListingState`` into a page token and back, for one secret key."""

    def __init__(self, secret_key: str | bytes):
        self._serializer = URLSafeSerializer(secret_key, salt=SALT)

    def dumps(self, state: ListingState, scope: str) -> str:
        positions = {}
        for backend_id, position in state.positions.items():
            entry: dict[str, Any] = {}
            if position.last is not None:
                entry["k"] = _key_json(position.last)
            if position.resume is not None:
                entry["r"] = position.resume
            if position.done:
                entry["d"] = 1
            if position.whole:
                entry["w"] = 1
            positions[backend_id] = entry
        return self._serializer.dumps({"v": VERSION, "s": _scope_tag(scope), "b": positions,
                                       "l": _key_json(state.last)})

    def loads(self, token: str, scope: str) -> ListingState:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise PageTokenInvalid(reason=f"longer than {MAX_TOKEN_CHARS} characters")
        try:
            data = self._serializer.loads(token)
        except BadData:
            raise PageTokenInvalid(reason="it is damaged, or was not made by this aggregator") from None
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise PageTokenInvalid(reason="it was made by another version of this aggregator")
        if data.get("s") != _scope_tag(scope):
            raise PageTokenInvalid(reason="it belongs to another user's listing")
        try:
            return _state_from(data)
        except (ValueError, TypeError, AttributeError) as exc:
            raise PageTokenInvalid(reason=f"its content is malformed: {exc}") from None


def _state_from(data: dict) -> ListingState:
    backends = data.get("b")
    if not isinstance(backends, dict):
        raise ValueError("no backend positions")
    positions = {}
    for backend_id, entry in backends.items():
        if not isinstance(entry, dict) or set(entry) - {"k", "r", "d", "w"}:
            raise ValueError(f"position of {backend_id!r}")
        resume = entry.get("r")
        if resume is not None and not isinstance(resume, str):
            raise ValueError(f"resume token of {backend_id!r}")
        position = Position(_key_from(entry.get("k")), resume, bool(entry.get("d")), bool(entry.get("w")))
        if position.resume is not None and position.last is None:
            raise ValueError(f"{backend_id!r} resumes without a last position")
        positions[backend_id] = position
    return ListingState(positions, _key_from(data.get("l")))


def _scope_tag(scope: str) -> str:
    return hashlib.sha256(scope.encode("utf-8")).hexdigest()[:16]
