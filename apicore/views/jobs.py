"""Batch jobs: /jobs, /jobs/{id}, start and stop (/jobs/{id}/results POST/DELETE), results, logs, estimate.

Job listings page with ``limit`` and an opaque ``page`` token that the service hands out for the ``next``
link (an aggregator merges several backends' listings behind it); a plain ``offset`` is still accepted.
Job logs page with ``limit`` and ``offset``, an opaque string (the id of the last entry seen, as the
service gave it in the ``next`` link), which the service checks.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from apicore import errors
from apicore.views.context import api, api_root, object_body, paging_arguments, require_caller
from apicore.views.job_fields import checked_fields
from apicore.views.log_pages import log_arguments, log_links

bp = Blueprint("jobs", __name__)

# GET /jobs lists scalars only (the spec recommends leaving out process, usage and other objects)
LISTED = ("id", "title", "description", "status", "progress", "created", "updated", "plan", "costs", "budget")
TRUE = ("", "true", "1")  # ?partial, ?partial=true (allowEmptyValue)


@bp.get("/jobs")
def list_jobs():
    caller = require_caller()
    limit, offset = paging_arguments()
    root = api_root()
    listing, next_page = api().jobs.listing(caller, root, limit, request.args.get("page") or None, offset)
    links = [{"rel": "self", "href": f"{root}/jobs", "type": "application/json"}]
    if next_page is not None:
        query = urlencode({"limit": limit, "page": next_page} if limit is not None else {"page": next_page})
        links.append({"rel": "next", "href": f"{root}/jobs?{query}", "type": "application/json"})
    jobs = [{k: v for k, v in job.items() if k in LISTED or k.startswith("federation:")} for job in listing["jobs"]]
    return jsonify({**listing, "jobs": jobs, "links": links})


@bp.post("/jobs")
def create_job():
    caller = require_caller()
    body = object_body()
    if "process" not in body:
        raise errors.ProcessGraphMissing("Send the job's process as {\"process\": {\"process_graph\": {...}}}.")
    root = api_root()
    created = api().jobs.create(caller, checked_fields(body), root)
    job_id, extra = (created, {}) if isinstance(created, str) else created  # (id, response headers) allowed
    return Response(status=201, headers={**extra, "Location": f"{root}/jobs/{job_id}", "OpenEO-Identifier": job_id})


@bp.get("/jobs/<job_id>")
def describe_job(job_id: str):
    return jsonify(api().jobs.describe(require_caller(), job_id, api_root()))


@bp.patch("/jobs/<job_id>")
def update_job(job_id: str):
    caller = require_caller()
    api().jobs.update(caller, job_id, checked_fields(object_body()), api_root())
    return Response(status=204)


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str):
    api().jobs.delete(require_caller(), job_id)
    return Response(status=204)


@bp.post("/jobs/<job_id>/results")
def start_job(job_id: str):
    api().jobs.start(require_caller(), job_id, api_root())
    return Response(status=202)


@bp.delete("/jobs/<job_id>/results")
def stop_job(job_id: str):
    api().jobs.stop(require_caller(), job_id)
    return Response(status=204)


@bp.get("/jobs/<job_id>/results")
def job_results(job_id: str):
    caller = require_caller()
    partial = request.args.get("partial", "false").lower() in TRUE
    document, status = api().jobs.results(caller, job_id, api_root(), partial)
    return jsonify(document), status


@bp.get("/jobs/<job_id>/logs")
def job_logs(job_id: str):
    caller = require_caller()
    offset, level, limit = log_arguments()
    root = api_root()
    listing, last = api().jobs.logs(caller, job_id, root, offset, level, limit)
    return jsonify({**listing, "links": log_links(f"{root}/jobs/{job_id}/logs", last, limit, level)})


@bp.get("/jobs/<job_id>/estimate")
def estimate_job(job_id: str):
    return jsonify(api().jobs.estimate(require_caller(), job_id, api_root()))
