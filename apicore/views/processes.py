"""Predefined processes: /processes.

Always the whole list, whatever ``limit`` says. The spec makes pagination optional for back-ends
("back-ends not supporting pagination MUST return all resources"), and the JS client 2.12 (hence the
Web Editor) asks for ``limit=50`` but reads only the first page: a paginated answer would hide
load_collection and save_result from it.
"""

from __future__ import annotations

from flask import Blueprint

from apicore.views.context import api, api_root, document_response

bp = Blueprint("processes", __name__)


@bp.get("/processes")
def list_processes():
    processes = api().processes
    return document_response("processes", processes.version(), lambda: _listing(processes.listing(api_root())))


def _listing(listing: dict) -> dict:
    return {**listing, "links": [{"rel": "self", "href": f"{api_root()}/processes", "type": "application/json"}]}
