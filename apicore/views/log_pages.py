"""The query of a log listing (GET /jobs/{id}/logs, GET /services/{id}/logs) and its `next` link."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import request

from apicore import errors
from apicore.log_levels import check_level
from apicore.views.context import MAX_LIMIT, integer_argument

MAX_LOG_OFFSET_CHARS = 1000  # an entry id of any backend fits; longer is no entry id


def log_arguments() -> tuple[str | None, str, int | None]:
    """(offset: the id of the last entry seen, unchecked here; minimum level; limit)."""
    limit = integer_argument("limit", 1, MAX_LIMIT, None)
    offset = request.args.get("offset") or None
    if offset is not None and len(offset) > MAX_LOG_OFFSET_CHARS:
        raise errors.BadRequest(reason=f"'offset' must be the id of a log entry (at most {MAX_LOG_OFFSET_CHARS} "
                                       "characters): follow the 'next' link of the logs")
    return offset, check_level(request.args.get("level") or "debug"), limit


def log_links(url: str, last: str | None, limit: int | None, level: str) -> list[dict]:
    """A `next` link to ``url`` after entry ``last`` (None: this was the last page)."""
    if last is None:
        return []
    query = urlencode({k: v for k, v in (("offset", last), ("limit", limit), ("level", level)) if v is not None})
    return [{"rel": "next", "type": "application/json", "href": f"{url}?{query}"}]
