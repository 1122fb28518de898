"""GET /jobs across backends: one listing, newest first, paged with ``limit`` and an opaque token.

    page = merged_page(backend_ids, fetch, limit, token, codec=codec, scope=user_id,
                       root=root, backend_roots=roots)
    # page.jobs: job documents with federated ids; page.next: token of the next page or None;
    # page.missing: backends that failed (federation:missing)

``fetch(backend_id, limit, backend_token) -> (jobs, next_backend_token | None)`` is the caller's: one
page of one backend's ``GET /jobs`` (``backend_token`` None: its first page; else a token it returned
before, e.g. a ``next`` link or an offset). It raises (an ``UpstreamError``, ideally) when the backend
fails; that backend is then missing from the page. Nothing here does HTTP.

Order: ``created`` newest first, jobs without one last, ties by federated id: a total order, the same on
every page. Each backend must list its own jobs newest first (ties in any order), as openEO backends
do; one that returns its whole list on one page may list it in any order (it is sorted here). A backend
that pages out of order is read whole (and sorted) from the first page that shows it (``Position.whole``);
jobs it held back before that page may be missed, as nothing short of reading it whole could tell.

The guarantee, for one listing (a first page and the pages reached through ``next``):

- No job appears twice.
- Every job that existed when the first page was served, and still exists when the page that would hold
  it is served, appears on exactly one page, provided its backend answers then. The pages concatenate
  to the order above.
- Jobs created after the first page was served do not appear in this listing (they appear first on a
  fresh one), except on a backend that had not answered on any page yet.
- A deleted job never makes another disappear: a backend paged by offset whose pages shifted under
  deletions is read again from its first page (the resumed page must begin before the listing's
  position on that backend, else it is re-read from the start).
- A backend missing from a page (``missing``) loses nothing: its jobs due on that page come on a later
  page where it answers, then out of order. The listing ends (no ``next``) when the backends that
  answered have nothing more; jobs of a backend missing from that last page are not listed.

The token holds, per backend, the sort key of the last job taken from it and the backend's token of the
page to resume from (``cursor.Position``); it is signed and bound to the user (``cursor.CursorCodec``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping, Sequence

from aggregator.federation.errors import BackendResponseInvalid, UpstreamError
from aggregator.jobs import ids, rewrite
from aggregator.jobs.cursor import CursorCodec, ListingState, Position, SortKey, sort_key
from aggregator.jobs.urls import JobUrls

log = logging.getLogger(__name__)

#: The source of jobs the aggregator holds itself (split jobs): not a backend id (those match
#: ``[A-Za-z0-9_-]+``); its documents are shown as they are, their ids federated already.
LOCAL_SOURCE = "~local"
Fetch = Callable[[str, "int | None", "str | None"], "tuple[list[dict], str | None]"]
MAX_FETCHES = 50  # per backend and page: a backend whose listing does not end is missing, not a hang
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_NEVER = float("-inf")  # the "created" rank of a job without a creation time


@dataclass
class MergedPage:
    jobs: list[dict]
    next: str | None
    missing: list[str]
    failures: dict[str, UpstreamError] = field(default_factory=dict)


def merged_page(backend_ids: Sequence[str], fetch: Fetch, limit: int | None, token: str | None, *,
                codec: CursorCodec, scope: str, root: str, backend_roots: Mapping[str, str]) -> MergedPage:
    """One page of the merged listing (see the module doc). ``limit`` None: everything on one page."""
    state = codec.loads(token, scope) if token else ListingState({}, None)
    positions = {b: state.positions.get(b) or Position(last=state.last) for b in backend_ids}
    memo: dict = {}
    failures: dict[str, UpstreamError] = {}
    while True:
        try:
            merge = _Merge(positions, failures, fetch, limit, memo)
            taken = merge.run()
            break
        except _Restart as restart:  # a backend failed or is unsorted: that page again, without its jobs
            if restart.failure is not None:
                failures[restart.backend_id] = restart.failure
            else:
                positions[restart.backend_id] = Position(positions[restart.backend_id].last, whole=True)
    urls = {b: JobUrls.of(root, b, backend_roots[b]) for b in backend_ids if b != LOCAL_SOURCE}
    jobs = [job.document if job.backend_id == LOCAL_SOURCE else rewrite.job_document(job.document, urls[job.backend_id])
            for job in taken]
    new_state = merge.new_state(state.last)
    more = any(not p.done for b, p in new_state.positions.items() if b not in failures)
    return MergedPage(jobs, codec.dumps(new_state, scope) if more else None, sorted(failures), failures)


@dataclass(frozen=True)
class _Job:
    key: SortKey
    created: float  # µs since the epoch, or _NEVER
    backend_id: str
    document: dict


class _Restart(Exception):
    def __init__(self, backend_id: str, failure: UpstreamError | None = None):
        self.backend_id, self.failure = backend_id, failure


class _Stream:
    """One backend's jobs for this page, read page by page from its resume position."""

    def __init__(self, backend_id: str, position: Position):
        self.backend_id = backend_id
        self.position = position
        self.token = position.resume
        self.exhausted = position.done
        self.floor = float("inf")  # lowest ``created`` read so far: unread jobs are no newer
        self.pending: list[_Job] = []  # read, not yet taken: sorted, next job last
        self.pages: list[tuple[str | None, float]] = []  # (token, newest created on it), in stream order
        self.seen: set[str] = set()
        self.fetches = 0

    def head(self) -> _Job | None:
        return self.pending[-1] if self.pending else None

    def may_precede(self, job: _Job) -> bool:
        """Could a job not read yet come before ``job``? (Unread jobs are no newer than ``floor``.)"""
        return not self.exhausted and self.floor >= job.created


class _Merge:
    def __init__(self, positions: Mapping[str, Position], failures: Mapping, fetch: Fetch, limit: int | None,
                 memo: dict):
        self.streams = [_Stream(b, p) for b, p in positions.items() if b not in failures]
        self.positions = positions
        self.fetch, self.limit, self.memo = fetch, limit, memo
        self.taken: list[_Job] = []

    def run(self) -> list[_Job]:
        for stream in self.streams:
            if stream.position.whole and not stream.exhausted:
                self._read_whole(stream)
        while self.limit is None or len(self.taken) < self.limit:
            live = [s for s in self.streams if s.pending or not s.exhausted]
            if not live:
                break
            heads = [s for s in live if s.pending]
            if not heads:
                for stream in live:
                    self._read(stream)
                continue
            best = min(heads, key=lambda s: s.head().key)
            job = best.head()
            blocker = next((s for s in live if s.may_precede(job)), None)
            if blocker is not None:
                self._read(blocker)
                continue
            self.taken.append(best.pending.pop())
        return self.taken

    def _read(self, stream: _Stream) -> None:
        token = stream.token
        jobs, next_token = self._fetch(stream, token)
        first_read = not stream.pages
        if first_read and token is not None and not self._resumable(stream, jobs):
            stream.token, stream.floor = None, float("inf")  # pages shifted under deletions: from the start
            return
        created = [_created(job) for job in jobs]
        if any(c > stream.floor for c in created) or any(b > a for a, b in zip(created, created[1:])):
            if not (token is None and next_token is None):  # a whole list on one page is simply sorted
                raise _Restart(stream.backend_id)
        stream.pages.append((token, max(created, default=_NEVER)))
        stream.floor = min([stream.floor, *created])
        for job, when in zip(jobs, created):
            self._add(stream, job, when)
        stream.pending.sort(key=lambda j: j.key, reverse=True)
        stream.token = next_token
        stream.exhausted = next_token is None

    def _read_whole(self, stream: _Stream) -> None:
        stream.token = None
        while True:
            jobs, stream.token = self._fetch(stream, stream.token)
            for job in jobs:
                self._add(stream, job, _created(job))
            if stream.token is None:
                break
        stream.pending.sort(key=lambda j: j.key, reverse=True)
        stream.exhausted, stream.floor = True, _NEVER

    def _add(self, stream: _Stream, document: dict, created: float) -> None:
        federated_id = document["id"] if stream.backend_id == LOCAL_SOURCE else ids.encode(stream.backend_id,
                                                                                            document["id"])
        key = sort_key(None if created == _NEVER else int(created), federated_id)
        last = stream.position.last
        if federated_id in stream.seen or (last is not None and key <= last):
            return  # listed on an earlier page, created since the listing began, or repeated by the backend
        stream.seen.add(federated_id)
        stream.pending.append(_Job(key, created, stream.backend_id, document))

    def _resumable(self, stream: _Stream, jobs: list[dict]) -> bool:
        """The resumed page must begin with a job strictly newer than the last one taken from this backend:
        then no job before that page can be one not listed yet (the backend lists newest first)."""
        return bool(jobs) and _created(jobs[0]) > _created_of(stream.position.last)

    def _fetch(self, stream: _Stream, token: str | None) -> tuple[list[dict], str | None]:
        stream.fetches += 1
        if stream.fetches > MAX_FETCHES:
            raise _Restart(stream.backend_id, BackendResponseInvalid(
                stream.backend_id, f"its job listing did not end within {MAX_FETCHES} page requests"))
        key = (stream.backend_id, token)
        if key not in self.memo:
            size = None if self.limit is None else self.limit - len(self.taken) + 1
            try:
                self.memo[key] = _checked(stream.backend_id, *self.fetch(stream.backend_id, size, token))
            except UpstreamError as error:
                raise _Restart(stream.backend_id, error) from None
            except Exception as exc:  # a garbage answer must not break the listing: that backend is missing
                log.exception("listing the jobs of backend '%s' failed", stream.backend_id)
                raise _Restart(stream.backend_id, BackendResponseInvalid(
                    stream.backend_id, f"its job listing could not be used ({type(exc).__name__})")) from exc
        return self.memo[key]

    def new_state(self, previous_last: SortKey | None) -> ListingState:
        last = self.taken[-1].key if self.taken else previous_last
        positions = dict(self.positions)
        for stream in self.streams:
            taken_last = max((k for k in (stream.position.last, last) if k is not None), default=None)
            if not self.taken:
                taken_last = stream.position.last
            done = stream.exhausted and not stream.pending
            positions[stream.backend_id] = Position(
                taken_last, None if done or stream.position.whole else _resume(stream, taken_last), done,
                stream.position.whole)
        return ListingState(positions, last)


def _resume(stream: _Stream, last: SortKey | None) -> str | None:
    """The token of the last page read that holds a job newer than ``last``: everything before that page's
    end is taken, so reading goes on from there (None: from the first page)."""
    if last is None:
        return None
    last_created = _created_of(last)
    resume = stream.position.resume if not stream.pages else None
    for token, newest in stream.pages:
        if newest > last_created:
            resume = token
    return resume


def _checked(backend_id: str, jobs, next_token) -> tuple[list[dict], str | None]:
    if not isinstance(jobs, list) or not all(isinstance(j, dict) and isinstance(j.get("id"), str) and j["id"]
                                             for j in jobs):
        raise BackendResponseInvalid(backend_id, "its job listing is not a list of jobs with ids")
    if next_token is not None and not isinstance(next_token, str):
        raise BackendResponseInvalid(backend_id, "its next page is not given as a string")
    return jobs, next_token


def _created_of(key: SortKey) -> float:
    return _NEVER if key[0] else -key[1]


def _created(job: Mapping) -> float:
    """``created`` in µs since the epoch (UTC; a time without zone is taken as UTC); _NEVER if absent."""
    value = job.get("created")
    if not isinstance(value, str):
        return _NEVER
    try:
        moment = datetime.fromisoformat(value.strip().upper())
    except ValueError:
        return _NEVER
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return float((moment - _EPOCH) // _MICROSECOND)

