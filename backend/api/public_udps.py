"""Published user-defined processes (stored with ``"public": true``), readable without a token:

    GET /public/process_graphs                          the catalogue: id, summary, description, parameters,
                                                        returns, owner, canonical URL, cost hint (median
                                                        credits of its last 20 calling runs); paged
    GET /public/process_graphs/{owner id}/{process id}  the process description, as JSON

The second URL is what the owner's ``GET /process_graphs/{id}`` links as ``canonical`` and what anyone
passes as ``namespace`` to call the process (here: read from the database, elsewhere: fetched like any
URL; backend/processing/namespaces.py).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import Blueprint, jsonify, request

from apicore import errors
from apicore.views.context import api_root
from apicore.views.process_graphs import PROCESS_ID, SUMMARY_KEYS
from backend.api.context import services
from backend.processing.namespaces import PUBLIC_PATH

bp = Blueprint("public_udps", __name__)

OWNER_ID = re.compile(r"[0-9a-f]{1,64}")  # fullmatch
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


def public_url(root: str, owner_id: str, process_id: str) -> str:
    return f"{root.rstrip('/')}/{PUBLIC_PATH}/{quote(owner_id)}/{quote(process_id)}"


def canonical_link(root: str, owner_id: str, process_id: str) -> dict:
    return {"rel": "canonical", "href": public_url(root, owner_id, process_id), "type": "application/json",
            "title": "Public URL of this process (use it as namespace)"}


@bp.get(f"/{PUBLIC_PATH}")
def catalogue():
    limit = _limit(request.args.get("limit"))
    after = _after(request.args.get("page"))
    rows = services().udps.published(limit + 1, after)
    root = api_root()
    hints = services().udps.cost_hints([(owner_id, spec.get("id", "")) for owner_id, _, spec in rows[:limit]])
    processes = []
    for owner_id, owner_name, spec in rows[:limit]:
        entry = {**{k: spec[k] for k in SUMMARY_KEYS if k in spec}, "owner": owner_name,
                 "links": [canonical_link(root, owner_id, spec.get("id", ""))]}
        if (owner_id, spec.get("id", "")) in hints:  # the credits whole runs calling it cost lately
            entry["cost_hint"] = hints[(owner_id, spec.get("id", ""))]
        processes.append(entry)
    links = [{"rel": "self", "href": f"{root}/{PUBLIC_PATH}", "type": "application/json"}]
    if len(rows) > limit:
        owner_id, _, spec = rows[limit - 1]
        links.append({"rel": "next", "type": "application/json",
                      "href": f"{root}/{PUBLIC_PATH}?limit={limit}&page={quote(owner_id)}/{quote(spec['id'])}"})
    return jsonify({"processes": processes, "links": links})


@bp.get(f"/{PUBLIC_PATH}/<owner_id>/<process_id>")
def describe(owner_id: str, process_id: str):
    spec = None
    if OWNER_ID.fullmatch(owner_id) and PROCESS_ID.fullmatch(process_id):
        spec = services().udps.get_public(owner_id, process_id)
    if spec is None:
        raise errors.ProcessGraphNotFound(f"No published process '{process_id}' of that owner: it was never "
                                          "published, was unpublished or deleted.")
    return jsonify({**spec, "links": [canonical_link(api_root(), owner_id, process_id)]})


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise errors.BadRequest(reason=f"'limit' must be a whole number from 1 to {MAX_LIMIT}, not {value!r}")
    return int(value)


def _after(page: str | None) -> tuple[str, str] | None:
    if page is None:
        return None
    owner_id, _, process_id = page.partition("/")
    if not OWNER_ID.fullmatch(owner_id) or not PROCESS_ID.fullmatch(process_id):
        raise errors.BadRequest(reason="'page' is not a page of this catalogue: follow the 'next' link")
    return owner_id, process_id
