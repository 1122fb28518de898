"""POST /validation: check a process without running it; always 200 with the list of problems.

Authentication is optional (the spec's ``security: [{}, Bearer]``): anonymous callers get the same
checks, only without their user-defined processes. A body that is not a JSON object is a bad request
(4xx); anything wrong inside the object, including a missing ``process_graph``, is a validation error
in the 200 answer (the conformance suite posts ``{}`` and expects 200).
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from apicore import errors
from apicore.views.context import api, api_root, json_body, optional_caller

bp = Blueprint("validation", __name__)


@bp.post("/validation")
def validate():
    caller = optional_caller()
    body = json_body()  # too deeply nested: JsonInvalid
    if not isinstance(body, dict):
        raise errors.ProcessGraphMissing(
            "Send the process to validate as a JSON object: {\"process_graph\": {...}, \"parameters\": [...]}.")
    return jsonify(api().processing.validate(caller, body, api_root()))
