"""Predefined processes: /processes.

Always the whole list, whatever ``limit`` says. The spec makes pagination optional for back-ends
("back-ends not supporting pagination MUST return all resources"), and the JS client 2.12 (hence the
Web Editor) asks for ``limit=50`` but reads only the first page: a paginated answer would hide
load_collection and save_result from it.
"""

from __future__ import annotations

from flask import Blueprint

from backend.api.context import api_root, frozen, services

bp = Blueprint("processes", __name__)


@bp.get("/processes")
def list_processes():
    return frozen("processes", _listing).response()


def _listing() -> dict:
    return {"processes": services().processes.specs(),
            "links": [{"rel": "self", "href": f"{api_root()}/processes", "type": "application/json"}]}
