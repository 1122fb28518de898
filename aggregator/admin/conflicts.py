"""``GET /federation/conflicts``: where the backends' descriptions disagree, and what the federation shows.

Read from the merged listings (``/collections``, ``/processes``, ``/file_formats``, ``/udf_runtimes``) as
they are cached: nothing is merged again while the backends' documents stay the same. Each entry names
``kind``, ``id``, the field's ``path``, each backend's value (``values``), ``chosen`` (the backend whose
value is shown, or the value itself, e.g. ``various``) and ``shown``. Query: ``kind`` (one of
``CONFLICT_KINDS``). A single collection described in full (``/collections/{id}``) may disagree on more
fields than its listing entries do; those are not listed.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from aggregator.admin.access import parts, require_admin
from aggregator.merging.common import FEDERATION_MISSING
from aggregator.metadata import CONFLICT_KINDS
from apicore import errors
from apicore.views.context import api_root


def register_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/federation/conflicts", view_func=list_conflicts, methods=["GET"])


def list_conflicts():
    require_admin()
    kind = request.args.get("kind")
    if kind is not None and kind not in CONFLICT_KINDS:
        raise errors.BadRequest(reason=f"'kind' must be one of {', '.join(CONFLICT_KINDS)}, not {kind[:40]!r}")
    conflicts, missing = parts().metadata.conflicts(api_root(), (kind,) if kind else CONFLICT_KINDS)
    return jsonify({"conflicts": [conflict.to_dict() for conflict in conflicts], FEDERATION_MISSING: missing,
                    "links": [{"rel": "self", "href": f"{api_root()}/federation/conflicts"}]})
