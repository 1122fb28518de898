"""POST /validation: check a process without running it; always 200 with the list of problems.

Authentication is optional (the spec's ``security: [{}, Bearer]``): anonymous callers get the same
checks, only without their user-defined processes. A body that is not a JSON object is a bad request
(4xx); anything wrong inside the object, including a missing ``process_graph``, is a validation error
in the 200 answer (the conformance suite posts ``{}`` and expects 200).
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from apicore import errors
from backend.api.context import api_root, json_body, optional_user, services
from backend.processing.engine.executor import RunContext
from backend.processing.validation import validate_process

bp = Blueprint("validation", __name__)


@bp.post("/validation")
def validate():
    user = optional_user()
    try:
        body = json_body()
    except RecursionError:
        raise errors.JsonInvalid(reason="the document is nested too deeply") from None
    if not isinstance(body, dict):
        raise errors.ProcessGraphMissing(
            "Send the process to validate as a JSON object: {\"process_graph\": {...}, \"parameters\": [...]}.")
    svc = services()
    if user is None:
        context = RunContext(services=svc, api_root=api_root())
    else:
        context = RunContext(user_id=user.user_id, services=svc, api_root=api_root(),
                             udp_lookup=lambda process_id: svc.udps.get(user.user_id, process_id))
    return jsonify({"errors": validate_process(body, context)})
