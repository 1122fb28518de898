"""In-memory job listings of fake backends, each paging its own way, for the merged listing's tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from aggregator.federation.errors import BackendUnavailable
from aggregator.jobs import ids
from aggregator.jobs.cursor import CursorCodec
from aggregator.jobs.listing import MergedPage, merged_page

ROOT = "http://aggregator.test/openeo/1.2/"
START = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)
_sequence = itertools.count()


@dataclass
class FakeBackend:
    """A backend's ``GET /jobs``: ``style`` "offset" (token = offset), "keyset" (token = id of the last job
    of the previous page) or "single" (everything on one page, in creation order, ignoring ``limit``).
    Paged styles list newest first, ties in creation order reversed (not by id: a real backend's order)."""

    id: str
    style: str
    cap: int  # largest page it serves
    jobs: list[dict] = field(default_factory=list)
    fail: bool = False
    fail_on_calls: set[int] = field(default_factory=set)  # e.g. {2}: its second call (from now) fails
    calls: int = 0
    local_time: bool = False  # "created" with fractions and a +02:00 offset instead of whole seconds in Z
    unsorted: bool = False  # a paged backend listing oldest first (breaks the contract)

    @property
    def root(self) -> str:
        return f"http://{self.id}.test/openeo/1.2/"

    def add(self, when: datetime, job_id: str | None = None) -> str:
        job_id = job_id or f"{self.id}-job-{next(_sequence)}"
        created = (when.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="milliseconds")
                   if self.local_time else when.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.jobs.append({"id": job_id, "title": f"job {job_id}", "status": "created", "_seq": next(_sequence),
                          "created": created,
                          "links": [{"rel": "self", "href": f"{self.root}jobs/{job_id}"}]})
        return job_id

    def delete(self, job_id: str) -> None:
        self.jobs = [j for j in self.jobs if j["id"] != job_id]

    def ordered(self) -> list[dict]:
        if self.style == "single":
            return list(self.jobs)
        newest_first = sorted(self.jobs, key=lambda j: (_parse(j["created"]), j["_seq"]), reverse=True)
        return newest_first[::-1] if self.unsorted else newest_first

    def fetch(self, limit: int | None, token: str | None):
        self.calls += 1
        if self.fail or self.calls in self.fail_on_calls:
            raise BackendUnavailable(self.id, "connection refused")
        jobs = [{k: v for k, v in j.items() if k != "_seq"} for j in self.ordered()]
        if self.style == "single":
            return jobs, None
        size = self.cap if limit is None else min(limit, self.cap)
        if self.style == "offset":
            start = int(token or 0)
        elif token is None:
            start = 0
        else:  # keyset: the jobs after (created, sequence) of the previous page's last job
            created, seq = token.rsplit("|", 1)
            after = (_parse(created), int(seq))
            keys = [(_parse(j["created"]), j["_seq"]) for j in self.ordered()]
            start = next((i for i, key in enumerate(keys) if (key > after if self.unsorted else key < after)),
                         len(keys))
        page = jobs[start:start + size]
        if start + size >= len(jobs):
            return page, None
        if self.style == "offset":
            return page, str(start + size)
        last = self.ordered()[start + size - 1]
        return page, f"{last['created']}|{last['_seq']}"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Federation:
    def __init__(self, *backends: FakeBackend, secret: str = "test-secret", user: str = "alice"):
        self.backends = {b.id: b for b in backends}
        self.codec = CursorCodec(secret)
        self.user = user

    def fetch(self, backend_id: str, limit: int | None, token: str | None):
        return self.backends[backend_id].fetch(limit, token)

    def page(self, limit: int | None, token: str | None = None) -> MergedPage:
        return merged_page(list(self.backends), self.fetch, limit, token, codec=self.codec, scope=self.user,
                           root=ROOT, backend_roots={b: x.root for b, x in self.backends.items()})

    def expected(self) -> list[str]:
        """Every job's federated id in the merged order: newest first, ties by federated id."""
        entries = [(_parse(j["created"]), ids.encode(b.id, j["id"])) for b in self.backends.values() for j in b.jobs]
        return [fid for _, fid in sorted(entries, key=lambda e: (-e[0].timestamp(), e[1]))]

    def walk(self, limit: int, between=None, max_pages: int = 500) -> tuple[list[str], list[MergedPage]]:
        """Follow ``next`` from the first page; ``between(page_number, listed)`` runs before each further page."""
        listed, pages, token = [], [], None
        for number in range(max_pages):
            if number and between is not None:
                between(number, listed)
            page = self.page(limit, token)
            assert len(page.jobs) <= limit
            pages.append(page)
            listed.extend(job["id"] for job in page.jobs)
            token = page.next
            if token is None:
                return listed, pages
        raise AssertionError("the listing did not end")
