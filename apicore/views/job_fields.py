"""The job fields of a POST /jobs or PATCH /jobs/{id} body, each type-checked before any service sees
them; unknown (back-end specific) keys are ignored, except ``job_options`` (an object of back-end specific
options, as the openEO Python client sends them) and top-level ``federation:*`` keys (e.g. the aggregator's
``federation:force-backend``), which are passed on for a service to use or ignore. The process graph's
structure, the plan and the budget against the plan are the service's to check."""

from __future__ import annotations

import math
from typing import Any

from apicore import errors
from apicore.log_levels import check_level


def checked_fields(body: dict) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "process" in body:
        process = body["process"]
        if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict):
            raise errors.ProcessGraphMissing("'process' must be an object with a 'process_graph' object.")
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
    if "job_options" in body:
        options = body["job_options"]
        if options is not None and not isinstance(options, dict):
            raise errors.BadRequest(reason="'job_options' must be an object or null")
        fields["job_options"] = options
    fields.update({key: value for key, value in body.items() if key.startswith("federation:")})
    return fields


#: the fields a job stores (the others of ``checked_fields`` are options for the service)
JOB_FIELDS = ("process", "title", "description", "plan", "budget", "log_level")


def stored_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``checked_fields`` without the pass-through options: what a job store keeps."""
    return {key: value for key, value in fields.items() if key in JOB_FIELDS}
