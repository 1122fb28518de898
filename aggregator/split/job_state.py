"""A split job's run as the aggregator records it, and what users see of it (pure functions on dicts).

The state (``SplitRecord.state``)::

    {"status": "created" | "queued" | "running" | "finished" | "error" | "canceled",
     "run": 1,                                   # starts so far
     "parts": {node: {"job_id", "status", "progress", "costs", "canonical"}},
     "primary": None | {"job_id", "status", "progress", "costs"},
     "error": None | "what failed",
     "updated": "2026-12-05T08:00:00Z"}

Status while it runs: ``queued`` until a part or the primary job runs, then ``running``; the primary
job's status once it exists (the parts are done by then). Progress: the parts' mean as the first half,
the primary job's progress as the second.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from aggregator.jobs import ids
from aggregator.jobs.urls import JobUrls
from aggregator.merging.common import FEDERATION_BACKENDS, FEDERATION_MISSING
from aggregator.split.graphs import SplitGraphs
from aggregator.split.parts import DONE, PartJob

ACTIVE = frozenset({"queued", "running"})
REASON = "federation:reason"
SPLIT = "federation:split"
USER_FIELDS = ("title", "description", "plan", "budget", "log_level")


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def initial_state() -> dict:
    return {"status": "created", "run": 0, "parts": {}, "primary": None, "error": None, "updated": now()}


def part_entry(job: PartJob) -> dict:
    return {"job_id": job.job_id, "status": job.status, "progress": job.progress, "costs": job.costs,
            "canonical": job.canonical}


def overall(state: Mapping) -> tuple[str, float | None]:
    """The split job's status and progress (percent) from its parts and primary job."""
    primary = state.get("primary")
    parts = list((state.get("parts") or {}).values())
    if state["status"] not in ACTIVE:
        return state["status"], 100.0 if state["status"] == "finished" else None
    if primary is not None:
        status = primary["status"] if primary["status"] in DONE or primary["status"] in ACTIVE else "running"
        return status, 50.0 + (primary.get("progress") or 0.0) / 2
    running = any(p["status"] in ("running", "finished") for p in parts)
    progress = sum(100.0 if p["status"] == "finished" else (p.get("progress") or 0.0) for p in parts)
    return ("running" if running else "queued"), (progress / len(parts) / 2 if parts else 0.0)


def total_costs(state: Mapping) -> float | None:
    costs = [entry.get("costs") for entry in [*(state.get("parts") or {}).values(), state.get("primary") or {}]]
    numbers = [float(c) for c in costs if isinstance(c, (int, float)) and not isinstance(c, bool)]
    return sum(numbers) if numbers else None


def document(federated_id: str, fields: Mapping, split: SplitGraphs, state: Mapping, created: datetime,
             reason: str, urls: JobUrls | None = None) -> dict:
    """The job as ``GET /jobs/{id}`` shows it (``urls``: the aggregator's root, for its links); a listing
    entry without the process."""
    status, progress = overall(state)
    # no "plan": null (the spec's plan is a string; without one the default plan applies)
    shown: dict[str, Any] = {"id": federated_id, **{k: fields[k] for k in USER_FIELDS
                                                     if k in fields and not (k == "plan" and fields[k] is None)}}
    if urls is not None:
        shown["process"] = fields.get("process")
    shown.update({"status": status, "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"), "updated": state["updated"],
                  FEDERATION_BACKENDS: split.backends, REASON: reason})
    if progress is not None:
        shown["progress"] = round(progress, 1)
    costs = total_costs(state)
    if costs is not None:
        shown["costs"] = costs
    if urls is not None:
        shown[FEDERATION_MISSING] = []
        shown[SPLIT] = split_details(split, state)
        shown["links"] = [{"rel": "self", "href": urls.job(federated_id), "type": "application/json"}]
    return shown


def split_details(split: SplitGraphs, state: Mapping) -> dict:
    """Where each part runs and as which job (the federated ids of the backends' jobs, readable as usual)."""
    parts = state.get("parts") or {}
    primary = state.get("primary")

    def job(backend_id: str, entry: Mapping | None) -> dict:
        if not entry or not entry.get("job_id"):
            return {"job": None, "status": "not started"}
        return {"job": ids.encode(backend_id, entry["job_id"]), "status": entry["status"]}

    details = {"primary": {"backend": split.primary, **job(split.primary, primary)},
               "parts": [{"node": p.node, "collection": p.collection, "backend": p.backend_id,
                          **job(p.backend_id, parts.get(p.node))} for p in split.parts]}
    if state.get("error"):
        details["error"] = state["error"]
    return details


def backend_job_ids(split: SplitGraphs, state: Mapping) -> set[str]:
    """The federated ids of the backends' jobs this split job consists of (hidden from the job listing)."""
    found = {ids.encode(p.backend_id, (state.get("parts") or {})[p.node]["job_id"]) for p in split.parts
             if (state.get("parts") or {}).get(p.node, {}).get("job_id")}
    primary = state.get("primary")
    if primary and primary.get("job_id"):
        found.add(ids.encode(split.primary, primary["job_id"]))
    return found
