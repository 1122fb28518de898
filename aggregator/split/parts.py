"""Running the parts of a split graph as batch jobs on their backends, with the user's credentials.

    runner = PartRunner(parts.federation.upstreams, jobs_timeout=settings.jobs_timeout)
    jobs = runner.run_all(split.parts, headers_for=caller.upstream_headers, deadline=time.monotonic() + 900,
                          title="...")              # created, started, finished: each with its signed URL
    ...                                             # the primary graph reads jobs[i].canonical
    runner.delete_all(jobs, caller.upstream_headers)

Per part: ``POST /jobs`` (its graph, a title naming the part) and ``POST /jobs/{id}/results``; then
``GET /jobs/{id}`` is polled (0.5 s, growing to 5 s) until the job is ``finished`` (its results' signed
``canonical`` URL and its ``costs`` are read), ends in ``error``/``canceled`` (``SplitPartFailed`` with
the backend's error, 424) or passes the deadline (``SplitPartTimeout``, 504). The parts run at the same
time, each on a thread of a pool made for the call (nothing shared between requests). When one part
fails, the jobs of all parts are deleted before the error is raised; a refused submission keeps the
backend's status (e.g. 400 for an invalid argument).

The batch-job service reuses ``submit``/``poll``/``finish``/``stop``/``delete`` for split jobs (``s1-``
ids): it keeps each part's ``PartJob`` (backend and job id) in its record, polls instead of waiting, and
propagates stop and delete to every part.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from aggregator.federation.errors import BackendErrorResponse, UpstreamError
from aggregator.split.errors import SplitPartFailed, SplitPartTimeout
from aggregator.split.graphs import PartGraph
from apicore import errors

log = logging.getLogger(__name__)

HeadersFor = Callable[[str], Mapping[str, str]]  # backend id -> the user's headers there
FIRST_POLL, MAX_POLL = 0.5, 5.0
DONE = {"finished", "error", "canceled"}


@dataclass
class PartJob:
    part: PartGraph
    job_id: str | None = None  # the backend's own job id
    status: str = "not created"
    progress: float | None = None
    canonical: str | None = None  # signed results URL, once finished
    costs: Any = None  # the job's costs as the backend reports them
    document: dict = field(default_factory=dict)  # the last job document polled

    @property
    def backend_id(self) -> str:
        return self.part.backend_id


class PartRunner:
    """Thread-safe: no state between calls besides the upstreams."""

    def __init__(self, upstreams, *, jobs_timeout: float, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.upstreams = upstreams
        self.jobs_timeout = jobs_timeout
        self.sleep = sleep
        self.clock = clock

    # -- one part, step by step (also for the batch-job service) --

    def submit(self, part: PartGraph, headers: Mapping[str, str], title: str, body: dict | None = None) -> PartJob:
        """Create and start the part's job (``body``: another job than the part's own graph, e.g. the primary
        job of a split job); a refused submission is SplitPartFailed with the backend's status."""
        job = PartJob(part)
        upstream = self._upstream(part)
        body = body or {"process": {"process_graph": part.process_graph}, "title": title,
                        "description": f"Part '{part.node}' of a process graph split by the federation aggregator."}
        try:
            response = upstream.request("POST", "jobs", headers=headers, json=body, timeout=self.jobs_timeout)
            job.job_id = response.headers.get("OpenEO-Identifier") or response.headers.get("Location", "").rsplit("/", 1)[-1]
            if not job.job_id:
                raise SplitPartFailed(part.node, part.collection, part.backend_id,
                                      "the backend created the job without naming it (no OpenEO-Identifier)", 502)
            job.status = "created"
            upstream.request("POST", f"jobs/{job.job_id}/results", headers=headers, timeout=self.jobs_timeout)
            job.status = "queued"
        except UpstreamError as error:
            self.delete(job, headers)
            raise _failed(part, error) from None
        except BaseException:
            self.delete(job, headers)
            raise
        log.info("split part %s started as job %s on %s", part.node, job.job_id, part.backend_id)
        return job

    def poll(self, job: PartJob, headers: Mapping[str, str]) -> PartJob:
        """One look at the job: status and progress (and its costs once done)."""
        document = self._upstream(job.part).get_json(f"jobs/{job.job_id}", headers=headers, timeout=self.jobs_timeout)
        job.document = document
        job.status = str(document.get("status") or "unknown")
        progress = document.get("progress")
        job.progress = float(progress) if isinstance(progress, (int, float)) and not isinstance(progress, bool) else None
        job.costs = document.get("costs")
        return job

    def finish(self, job: PartJob, headers: Mapping[str, str]) -> PartJob:
        """After ``finished``: the signed ``canonical`` URL of its results (readable by any backend)."""
        document = self._upstream(job.part).get_json(f"jobs/{job.job_id}/results", headers=headers,
                                                     timeout=self.jobs_timeout)
        hrefs = [link.get("href") for link in document.get("links") or []
                 if isinstance(link, dict) and link.get("rel") == "canonical" and isinstance(link.get("href"), str)]
        if not hrefs:
            raise SplitPartFailed(job.part.node, job.part.collection, job.backend_id,
                                  "its results have no signed 'canonical' link that another backend could read", 502)
        job.canonical = hrefs[0]
        return job

    def failure(self, job: PartJob, headers: Mapping[str, str]) -> SplitPartFailed:
        """The error of a job that ended in ``error`` or ``canceled``: the backend's own error when it gives one."""
        part = job.part
        if job.status == "canceled":
            return SplitPartFailed(part.node, part.collection, part.backend_id, f"its job {job.job_id} was canceled")
        try:
            self._upstream(part).get_json(f"jobs/{job.job_id}/results", headers=headers, timeout=self.jobs_timeout)
        except BackendErrorResponse as error:  # 424 with the job's error log entry
            return SplitPartFailed(part.node, part.collection, part.backend_id,
                                   f"its job {job.job_id} failed: [{error.code}] {error.upstream_message}")
        except UpstreamError as error:
            return SplitPartFailed(part.node, part.collection, part.backend_id,
                                   f"its job {job.job_id} failed, and its error could not be read: {error.message}")
        return SplitPartFailed(part.node, part.collection, part.backend_id, f"its job {job.job_id} failed")

    def stop(self, job: PartJob, headers: Mapping[str, str]) -> None:
        if job.job_id and job.status not in DONE:
            self._quietly("stop", job, lambda up: up.request("DELETE", f"jobs/{job.job_id}/results", headers=headers,
                                                             timeout=self.jobs_timeout))

    def delete(self, job: PartJob, headers: Mapping[str, str]) -> None:
        """Best effort: a part job left behind is logged, never raised (the user's answer matters more)."""
        if job.job_id:
            self._quietly("delete", job, lambda up: up.request("DELETE", f"jobs/{job.job_id}", headers=headers,
                                                               timeout=self.jobs_timeout))

    # -- all parts, waited for (POST /result) --

    def wait(self, job: PartJob, headers: Mapping[str, str], deadline: float,
             on_progress: Callable[[PartJob], None] | None = None) -> PartJob:
        """Poll until the job is done or ``deadline`` (of ``clock``) passes; finished: with its URL."""
        interval, begun = FIRST_POLL, self.clock()
        while True:
            self.poll(job, headers)
            if on_progress is not None:
                on_progress(job)
            if job.status == "finished":
                return self.finish(job, headers)
            if job.status in DONE:
                raise self.failure(job, headers)
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise SplitPartTimeout(job.part.node, job.part.collection, job.backend_id,
                                       round(self.clock() - begun, 1))
            self.sleep(min(interval, remaining))
            interval = min(interval * 1.5, MAX_POLL)

    def run_all(self, parts: Iterable[PartGraph], headers_for: HeadersFor, deadline: float, title: str,
                on_progress: Callable[[PartJob], None] | None = None) -> list[PartJob]:
        """Every part submitted and waited for at once; any failure deletes every part's job and raises."""
        parts = list(parts)
        if not parts:
            return []
        started: list[PartJob] = []
        with ThreadPoolExecutor(len(parts), thread_name_prefix="split-part") as pool:
            futures = [pool.submit(self._run_one, part, headers_for, deadline, title, on_progress, started)
                       for part in parts]
            outcomes = [_outcome(future) for future in futures]
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:
            self.delete_all(started, headers_for)
            raise failures[0]
        return outcomes

    def delete_all(self, jobs: Iterable[PartJob], headers_for: HeadersFor) -> None:
        for job in jobs:
            try:
                headers = headers_for(job.backend_id)
            except errors.OpenEOError as error:
                log.warning("split part job %s on %s not deleted: %s", job.job_id, job.backend_id, error.message)
                continue
            self.stop(job, headers)
            self.delete(job, headers)

    # -- helpers --

    def _run_one(self, part: PartGraph, headers_for: HeadersFor, deadline: float, title: str,
                 on_progress, started: list[PartJob]) -> PartJob:
        headers = headers_for(part.backend_id)
        job = self.submit(part, headers, f"{title} [part {part.node} on {part.backend_id}]")
        started.append(job)  # list.append is atomic: the pool's threads share this list safely
        return self.wait(job, headers, deadline, on_progress)

    def _upstream(self, part: PartGraph):
        upstream = self.upstreams.get(part.backend_id)
        if upstream is None:
            raise SplitPartFailed(part.node, part.collection, part.backend_id,
                                  "the backend left the federation", 503)
        return upstream

    def _quietly(self, what: str, job: PartJob, call: Callable[[Any], Any]) -> None:
        try:
            call(self._upstream(job.part))
        except (errors.OpenEOError, OSError) as error:
            log.warning("could not %s split part job %s on %s: %s", what, job.job_id, job.backend_id, error)


def _failed(part: PartGraph, error: UpstreamError) -> SplitPartFailed:
    """A refused or failed call as the part's error, with the backend's status (its message without the
    ``Backend 'X':`` prefix, which the part error names already)."""
    reason = error.upstream_message if isinstance(error, BackendErrorResponse) else error.message
    code = f"[{error.code}] " if isinstance(error, BackendErrorResponse) else ""
    return SplitPartFailed(part.node, part.collection, part.backend_id, f"{code}{reason}", error.status)


def _outcome(future) -> Any:
    try:
        return future.result()
    except BaseException as error:  # noqa: BLE001 (returned, then raised by the caller after cleanup)
        return error

