"""GET /jobs over the federation: the first page needed from every backend fetched in parallel within one
deadline, then merged (aggregator/jobs/listing.py: newest first, signed page token).

A backend that fails (down, too slow for the deadline, its token rejected, no credentials of the user,
garbage) is in ``missing``; the listing answers with the others. Further pages of a backend that the
merge needs within the same answer are fetched one after another within a second deadline of the same
length (so an answer takes at most twice the deadline).

A backend's own paging token is the path of its ``next`` link relative to its API root
(``jobs?limit=3&page=...``), kept in the aggregator's signed page token. The link must stay on the
backend's root and on ``jobs``: anything else is the backend's invalid answer (the user's credentials for
that backend are never sent elsewhere).
"""

from __future__ import annotations

import time
from urllib.parse import urljoin, urlsplit

from aggregator.auth import FederatedCaller
from aggregator.federation.errors import BackendResponseInvalid, BackendTimeout, BackendUnavailable
from aggregator.federation.upstream import Upstream
from aggregator.jobs.cursor import CursorCodec, ListingState, Position
from aggregator.jobs.listing import LOCAL_SOURCE, MergedPage, merged_page
from aggregator.parts import AggregatorParts


class FederatedJobListing:
    def __init__(self, parts: AggregatorParts, codec: CursorCodec, deadline: float):
        self.parts = parts
        self.codec = codec
        self.deadline = deadline

    def page(self, caller: FederatedCaller, root: str, limit: int | None, token: str | None,
             local_jobs: list[dict] | None = None) -> MergedPage:
        """``local_jobs``: the jobs the aggregator holds itself (split jobs), merged in as they are."""
        configs = self.parts.federation.registry.snapshot()
        backend_ids = [config.id for config in configs]
        state = self.codec.loads(token, caller.user_id) if token else ListingState({}, None)
        first: dict[str, str | None] = {}
        for backend_id in backend_ids:
            position = state.positions.get(backend_id) or Position(last=state.last)
            if not position.done:
                first[backend_id] = None if position.whole else position.resume
        first_ends = time.monotonic() + self.deadline
        size = None if limit is None else limit + 1  # what the merge asks first: one more than the page

        answers = self.parts.federation.fan_out(
            lambda upstream: self._fetch(upstream, caller, size, first[upstream.id], first_ends),
            backend_ids=list(first), deadline=self.deadline)
        fetched = {(backend_id, first[backend_id]): answer for backend_id, answer in answers.successes.items()}
        # Further pages of backends that answered get a deadline of their own: a backend that hung until the
        # first deadline must not leave the healthy ones no time for the pages the merge still needs.
        later_ends = time.monotonic() + self.deadline

        def fetch(backend_id: str, wanted: int | None, backend_token: str | None):
            if backend_id == LOCAL_SOURCE:
                return list(local_jobs or ()), None  # one whole page: sorted by the merge
            if backend_id in answers.failures:
                raise answers.failures[backend_id]
            if (backend_id, backend_token) in fetched:
                return fetched.pop((backend_id, backend_token))
            upstream = self.parts.federation.upstreams.get(backend_id)
            if upstream is None:
                raise BackendUnavailable(backend_id, "it left the federation during this request")
            return self._fetch(upstream, caller, wanted, backend_token, later_ends)

        sources = [*backend_ids, LOCAL_SOURCE] if local_jobs else backend_ids
        return merged_page(sources, fetch, limit, token, codec=self.codec, scope=caller.user_id, root=root,
                           backend_roots={config.id: config.url for config in configs})

    def _fetch(self, upstream: Upstream, caller: FederatedCaller, size: int | None, token: str | None,
               ends: float) -> tuple[list, str | None]:
        left = ends - time.monotonic()
        if left <= 0:
            raise BackendTimeout(upstream.id, self.deadline, "list its jobs in time")
        headers = caller.upstream_headers(upstream.id)
        if token is None:
            path, params = "jobs", ({"limit": size} if size is not None else None)
        else:
            path, params = token, None
        document = upstream.request_json("GET", path, headers=headers, params=params,
                                         timeout=min(left, self.parts.settings.jobs_timeout))
        return document.get("jobs"), next_token(document, upstream.id, upstream.config.url)


def next_token(document: dict, backend_id: str, backend_root: str) -> str | None:
    """The backend's ``next`` link as a path relative to its API root; None on its last page."""
    for link in document.get("links") or ():
        if isinstance(link, dict) and link.get("rel") == "next":
            href = link.get("href")
            if not isinstance(href, str) or not href:
                raise BackendResponseInvalid(backend_id, "GET /jobs: a next link without href")
            absolute = urljoin(backend_root, href)
            if not absolute.startswith(backend_root) or urlsplit(absolute).path != urlsplit(backend_root + "jobs").path:
                raise BackendResponseInvalid(backend_id, "GET /jobs: its next link leads away from its job listing")
            return absolute[len(backend_root):]
    return None
