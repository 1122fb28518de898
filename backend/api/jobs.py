"""Batch jobs: /jobs, /jobs/{id}, start and stop (/jobs/{id}/results POST/DELETE), logs, estimate."""

from __future__ import annotations

import math
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from apicore import errors
from backend.api.context import api_root, json_body, paging_arguments, require_user, services
from backend.accounting.pricing import check_budget, plan_for
from backend.jobs.billing import estimated_costs, hold_for_start, release_hold
from backend.jobs.estimate import estimate
from backend.jobs.logs import check_level
from backend.processing.engine.graph import Graph
from backend.storage.models import Job

bp = Blueprint("jobs", __name__)

# GET /jobs lists scalars only (the spec recommends leaving out process, usage and other objects)
LISTED = ("id", "title", "description", "status", "progress", "created", "updated", "plan", "costs", "budget")


@bp.get("/jobs")
def list_jobs():
    user = require_user()
    limit, offset = paging_arguments()
    jobs, more = services().jobs.list(user.user_id, limit, offset)
    links = [{"rel": "self", "href": f"{api_root()}/jobs", "type": "application/json"}]
    if more:
        links.append({"rel": "next", "href": f"{api_root()}/jobs?limit={limit}&offset={offset + limit}",
                      "type": "application/json"})
    return jsonify({"jobs": [{k: v for k, v in job_document(job).items() if k in LISTED} for job in jobs],
                    "links": links})


@bp.post("/jobs")
def create_job():
    user = require_user()
    body = _object_body()
    if "process" not in body:
        raise errors.ProcessGraphMissing("Send the job's process as {\"process\": {\"process_graph\": {...}}}.")
    fields = checked_fields(body)
    check_budget(fields.get("budget"), plan_for(services().settings.plans, fields.get("plan")))
    job = services().jobs.create(user.user_id, **fields)
    location = f"{api_root()}/jobs/{job.job_id}"
    return Response(status=201, headers={"Location": location, "OpenEO-Identifier": job.job_id})


@bp.get("/jobs/<job_id>")
def describe_job(job_id: str):
    user = require_user()
    return jsonify(job_document(services().jobs.get(user.user_id, job_id)))


@bp.patch("/jobs/<job_id>")
def update_job(job_id: str):
    user = require_user()
    changes = checked_fields(_object_body())
    if "plan" in changes or "budget" in changes:
        job = services().jobs.get(user.user_id, job_id)
        plan = plan_for(services().settings.plans, changes.get("plan", job.plan))
        check_budget(changes.get("budget", job.budget), plan)
    services().jobs.update(user.user_id, job_id, changes)
    return Response(status=204)


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str):
    user = require_user()
    svc = services()
    if svc.jobs.delete(user.user_id, job_id) == "queued":  # a running job is settled by its runner
        release_hold(svc.jobs, svc.ledger, job_id, "deleted before it ran")
    return Response(status=204)


@bp.post("/jobs/<job_id>/results")
def start_job(job_id: str):
    user = require_user()
    svc = services()
    job = svc.jobs.get(user.user_id, job_id)
    if job.status in ("queued", "running"):
        return Response(status=202)  # no effect, per spec
    ref = f"job-{job_id}-{uuid.uuid4().hex[:8]}"
    held = hold_for_start(svc, job, user.user_id, ref, api_root())
    if svc.jobs.start(user.user_id, job_id, billing_ref=ref):
        svc.job_logs.append(job_id, "info", f"Queued; {held:g} credits reserved.", min_level=job.log_level)
    else:  # started by a concurrent request meanwhile
        svc.ledger.release(user.user_id, ref, note=f"job {job_id}: started twice")
    return Response(status=202)


@bp.delete("/jobs/<job_id>/results")
def stop_job(job_id: str):
    user = require_user()
    svc = services()
    previous = svc.jobs.stop(user.user_id, job_id)
    if previous is not None:
        svc.job_logs.append(job_id, "info", f"Stopped by the user while {previous}; the job is back to 'created'.")
    if previous == "queued":  # a running job is settled by its runner, with what it used
        release_hold(svc.jobs, svc.ledger, job_id, "stopped before it ran")
    return Response(status=204)



@bp.get("/jobs/<job_id>/logs")
def job_logs(job_id: str):
    user = require_user()
    svc = services()
    job = svc.jobs.get(user.user_id, job_id)
    limit, offset = paging_arguments()  # offset: the id of the last entry seen
    level = check_level(request.args.get("level") or "debug")
    entries, more = svc.job_logs.read(job.job_id, offset, level, limit)
    links = []
    if more and entries:
        links.append({"rel": "next", "type": "application/json",
                      "href": f"{api_root()}/jobs/{job_id}/logs?offset={entries[-1]['id']}&limit={limit}&level={level}"})
    return jsonify({"level": level, "logs": entries, "links": links})


@bp.get("/jobs/<job_id>/estimate")
def estimate_job(job_id: str):
    user = require_user()
    svc = services()
    job = svc.jobs.get(user.user_id, job_id)
    document = estimate(job.process, svc.collections, api_root(), svc.settings.job_seconds_per_megapixel)
    document["costs"] = estimated_costs(job.process, plan_for(svc.settings.plans, job.plan), svc, api_root())
    return jsonify(document)


# --- documents and checks --------------------------------------------------------------------------

def job_document(job: Job) -> dict[str, Any]:
    root = api_root()
    document: dict[str, Any] = {
        "id": job.job_id, "title": job.title, "description": job.description, "process": job.process,
        "status": job.status, "created": _rfc3339(job.created), "updated": _rfc3339(job.updated),
        "plan": job.plan, "budget": job.budget, "log_level": job.log_level,
    }
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


def checked_fields(body: dict) -> dict[str, Any]:
    """The job fields of a POST/PATCH body, each checked; unknown (back-end specific) keys are ignored."""
    fields: dict[str, Any] = {}
    if "process" in body:
        process = body["process"]
        if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict):
            raise errors.ProcessGraphMissing("'process' must be an object with a 'process_graph' object.")
        Graph.parse(process["process_graph"])  # structural errors now, not when the job runs
        fields["process"] = process
    for name in ("title", "description", "plan"):
        if name in body:
            value = body[name]
            if value is not None and not isinstance(value, str):
                raise errors.BadRequest(reason=f"'{name}' must be a string or null")
            fields[name] = value
    if "budget" in body:
        budget = body["budget"]
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                                   or not math.isfinite(budget) or budget < 0):
            raise errors.BudgetInvalid(f"'budget' must be a non-negative number or null, not {budget!r}.")
        fields["budget"] = budget
    if "log_level" in body:
        value = body["log_level"]
        fields["log_level"] = "info" if value is None else check_level(value, "log_level")
    return fields


def _object_body() -> dict:
    body = json_body()
    if not isinstance(body, dict):
        raise errors.BadRequest(reason="the request body must be a JSON object")
    return body


def _rfc3339(value) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")

