"""The JSON documents of a batch job: GET /jobs/{id} (listed in GET /jobs too) and its results
(GET /jobs/{id}/results and the signed results document; built in ``backend/jobs/result_stac.py``)."""

from __future__ import annotations

from typing import Any

from backend.jobs import result_stac
from backend.jobs.result_stac import ResultLinks
from backend.storage.models import Job


def job_document(job: Job, root: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": job.job_id, "title": job.title, "description": job.description, "process": job.process,
        "status": job.status, "created": _rfc3339(job.created), "updated": _rfc3339(job.updated),
        "budget": job.budget, "log_level": job.log_level,
    }
    if job.plan is not None:  # the spec's `plan` is a string: without one the job runs on the default plan
        document["plan"] = job.plan
    if job.status in ("running", "finished", "error", "canceled") and job.progress is not None:
        document["progress"] = 100 if job.status == "finished" else job.progress
    elif job.status == "queued":
        document["progress"] = 0
    if job.costs is not None:
        document["costs"] = job.costs
    if job.usage:
        document["usage"] = job.usage
    document["links"] = [{"rel": "monitor", "type": "application/json", "href": f"{root}/jobs/{job.job_id}/logs"}]
    if job.status == "finished":
        document["links"].append({"rel": "result", "type": "application/json",
                                  "href": f"{root}/jobs/{job.job_id}/results"})
    return document


def results_document(job: Job, links: ResultLinks, signed: bool) -> dict:
    published = job.results if job.status == "finished" else None
    published = published or {}
    return result_stac.results_collection(job, published.get("assets", {}), links, signed,
                                          published.get("provenance"), published.get("derived_from"))


def _rfc3339(value) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
