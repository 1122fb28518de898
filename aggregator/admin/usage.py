"""``GET /federation/usage``: the per-backend usage report for partners (``credits report`` of the CLI).

Query: ``backend``, ``user`` (a user name), ``since``/``until`` (ISO 8601 dates or times, UTC when
without a zone), ``format`` (``json``, the default, or ``csv``)."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, request

from aggregator.accounting import render_usage_report
from aggregator.admin.access import parts, require_admin
from apicore import errors
from backend.storage.users import UserStore


def register_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/federation/usage", view_func=usage_report, methods=["GET"])


def usage_report():
    require_admin()
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "csv"):
        raise errors.BadRequest(reason=f"'format' must be json or csv, not {fmt[:20]!r}")
    user_id = None
    if name := request.args.get("user"):
        user = next((u for u in UserStore(parts().db).list() if u.name == name), None)
        if user is None:
            raise errors.BadRequest(reason=f"no user '{name[:100]}' at the aggregator")
        user_id = user.user_id
    rows = parts().accounting.usage_report(since=_moment("since"), until=_moment("until"),
                                           backend_id=request.args.get("backend") or None, user_id=user_id)
    if fmt == "csv":
        return Response(render_usage_report(rows, "csv"), mimetype="text/csv")
    return jsonify({"usage": rows})


def _moment(name: str) -> datetime | None:
    text = request.args.get(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.BadRequest(reason=f"'{name}' must be an ISO 8601 date or time, e.g. 2026-12-01 or "
                                       f"2026-12-01T12:00:00Z, not {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
