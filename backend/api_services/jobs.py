"""The backend's batch jobs (apicore.services.JobsService): the job store, credits held when a job
starts and released when it is stopped or deleted before it ran, logs, estimates and results documents.

Pages of GET /jobs: the token is the offset of the page in the caller's newest-first listing."""

from __future__ import annotations

import uuid

from apicore import errors
from apicore.services import Page
from apicore.views.context import MAX_OFFSET, integer_value, whole_number
from apicore.views.job_fields import stored_fields
from backend.accounting.pricing import check_budget, plan_for
from backend.api_services.job_documents import job_document, results_document
from backend.jobs.billing import estimated_costs, hold_for_start, release_hold
from backend.jobs.estimate import estimate
from backend.jobs.result_stac import ResultLinks
from backend.processing.engine.graph import Graph
from backend.services import Services
from backend.storage.models import User


class BackendJobs:
    def __init__(self, parts: Services):
        self.parts = parts

    def listing(self, caller: User, root: str, limit: int | None, page: str | None = None,
                offset: int = 0) -> Page:
        start = offset if page is None else _page_offset(page)
        jobs, more = self.parts.jobs.list(caller.user_id, limit, start)
        return Page({"jobs": [job_document(job, root) for job in jobs]}, str(start + limit) if more else None)

    def create(self, caller: User, fields: dict, root: str) -> str:
        fields = stored_fields(fields)  # job_options: none are offered
        _check_process(fields)
        check_budget(fields.get("budget"), plan_for(self.parts.settings.plans, fields.get("plan")))
        return self.parts.jobs.create(caller.user_id, **fields).job_id

    def describe(self, caller: User, job_id: str, root: str) -> dict:
        return job_document(self.parts.jobs.get(caller.user_id, job_id), root)

    def update(self, caller: User, job_id: str, changes: dict, root: str) -> None:
        changes = stored_fields(changes)
        _check_process(changes)
        if "plan" in changes or "budget" in changes:
            job = self.parts.jobs.get(caller.user_id, job_id)
            plan = plan_for(self.parts.settings.plans, changes.get("plan", job.plan))
            check_budget(changes.get("budget", job.budget), plan)
        self.parts.jobs.update(caller.user_id, job_id, changes)

    def delete(self, caller: User, job_id: str) -> None:
        svc = self.parts
        if svc.jobs.delete(caller.user_id, job_id) == "queued":  # a running job is settled by its runner
            release_hold(svc.jobs, svc.ledger, job_id, "deleted before it ran")

    def start(self, caller: User, job_id: str, root: str) -> None:
        svc = self.parts
        job = svc.jobs.get(caller.user_id, job_id)
        if job.status in ("queued", "running"):
            return  # no effect, per spec
        ref = f"job-{job_id}-{uuid.uuid4().hex[:8]}"
        held = hold_for_start(svc, job, caller.user_id, ref, root)
        if svc.jobs.start(caller.user_id, job_id, billing_ref=ref):
            svc.job_logs.append(job_id, "info", f"Queued; {held:g} credits reserved.", min_level=job.log_level)
        else:  # started by a concurrent request meanwhile
            svc.ledger.release(caller.user_id, ref, note=f"job {job_id}: started twice")

    def stop(self, caller: User, job_id: str) -> None:
        svc = self.parts
        previous = svc.jobs.stop(caller.user_id, job_id)
        if previous is not None:
            svc.job_logs.append(job_id, "info", f"Stopped by the user while {previous}; the job is back to 'created'.")
        if previous == "queued":  # a running job is settled by its runner, with what it used
            release_hold(svc.jobs, svc.ledger, job_id, "stopped before it ran")

    def logs(self, caller: User, job_id: str, root: str, offset: str | None, level: str, limit: int | None) -> Page:
        after = integer_value("offset", offset, 0, MAX_OFFSET, 0)  # our entry ids are sequence numbers
        job = self.parts.jobs.get(caller.user_id, job_id)
        entries, more = self.parts.job_logs.read(job.job_id, after, level, limit)
        return Page({"level": level, "logs": entries}, entries[-1]["id"] if more and entries else None)

    def estimate(self, caller: User, job_id: str, root: str) -> dict:
        svc = self.parts
        job = svc.jobs.get(caller.user_id, job_id)
        document = estimate(job.process, svc.collections, root, svc.settings.job_seconds_per_megapixel)
        document["costs"] = estimated_costs(job.process, plan_for(svc.settings.plans, job.plan), svc, root)
        return document

    def results(self, caller: User, job_id: str, root: str, partial: bool) -> tuple[dict, int]:
        svc = self.parts
        job = svc.jobs.get(caller.user_id, job_id)
        if job.status == "error" and not partial:
            entry = svc.job_logs.last_error(job_id) or {"id": "0", "level": "error", "message": "The job failed."}
            return entry, 424
        if job.status == "created" and partial:  # never queued: there are no results, not even partial ones
            raise errors.JobNotStarted(f"The job is '{job.status}': it has no results, not even partial ones. Start "
                                       "it with POST /jobs/{id}/results, then poll GET /jobs/{id}.")
        if job.status != "finished" and not partial:
            raise errors.JobNotFinished(f"The job is '{job.status}': its results are available once it is "
                                        "'finished'. Start it with POST /jobs/{id}/results and poll GET /jobs/{id}.")
        links = ResultLinks(svc.result_urls, root, job_id, svc.result_urls.expires_at())
        return results_document(job, links, signed=False), 200


def _check_process(fields: dict) -> None:
    """Structural errors of the graph now, not when the job runs."""
    if "process" in fields:
        Graph.parse(fields["process"]["process_graph"])


def _page_offset(page: str) -> int:
    start = whole_number(page, 0, MAX_OFFSET)
    if start is None:
        raise errors.BadRequest(reason=f"'page' {page[:40]!r} is not a page of this listing: follow the 'next' "
                                       "link of GET /jobs")
    return start
