"""Request-scoped helpers of the shared views: the services, the API root URL, the caller, the JSON body,
paging arguments and the serialised-once documents."""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Callable, Hashable

from cachetools import LRUCache
from flask import Response, current_app, g, jsonify, request

from apicore import errors
from apicore.frozen_json import FrozenJson
from apicore.services import Caller, OpenEOServices

_lock = threading.Lock()  # cachetools caches are not thread-safe, not even for reads
_roots: LRUCache = LRUCache(maxsize=64)  # (prefix, scheme, Host header, server name, port) -> API root


def api() -> OpenEOServices:
    return current_app.extensions["openeo"]


def api_root() -> str:
    """Absolute URL of the API root without a trailing slash, e.g. http://host:8080/openeo/1.2."""
    services = api()
    if services.public_url:
        return services.public_url.rstrip("/") + services.api_prefix
    environ = request.environ
    key = (services.api_prefix, environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"),
           environ.get("SERVER_NAME"), environ.get("SERVER_PORT"))
    with _lock:
        root = _roots.get(key)
    if root is None:  # werkzeug's host_url costs ~12 µs; cached documents are served in ~80 µs
        root = request.host_url.rstrip("/") + services.api_prefix
        with _lock:
            _roots[key] = root
    return root


def optional_caller() -> Caller | None:
    if "caller" not in g:
        g.caller = api().account.authenticate(request.headers.get("Authorization"))
    return g.caller


def require_caller() -> Caller:
    caller = optional_caller()
    if caller is None:
        raise errors.AuthenticationRequired(
            "This endpoint needs authentication: send 'Authorization: Bearer basic//<token>' "
            "(see GET /credentials/basic) or 'Bearer oidc/<provider>/<token>' (see GET /credentials/oidc).")
    return caller


def request_body() -> bytes:
    """The whole request body; 413 PayloadTooLarge above ``max_content_length``, chunked bodies too: werkzeug
    stops reading a body without a Content-Length silently at the limit (its stream raises only when read
    again), which made an over-long JSON body a misleading 400 "not valid JSON" from its truncated start."""
    data = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit:
        raise errors.PayloadTooLarge(limit=limit)
    return data


def json_body() -> Any:
    if not request.is_json:
        raise errors.UnsupportedMediaType(expected="application/json", got=request.mimetype or "none")
    try:
        return json.loads(request_body())
    except ValueError as exc:
        raise errors.JsonInvalid(reason=str(exc)) from None
    except RecursionError:
        raise errors.JsonInvalid(reason="it is nested too deeply") from None


def object_body() -> dict:
    body = json_body()
    if not isinstance(body, dict):
        raise errors.BadRequest(reason="the request body must be a JSON object")
    return body


def frozen(key: Hashable, build: Callable[[], Any]) -> FrozenJson:
    """A serialised-once document of this app, keyed by the API root too (hrefs differ per host name)."""
    cache = current_app.extensions.setdefault("frozen_json", LRUCache(maxsize=256))
    full_key = (key, api_root())
    with _lock:
        document = cache.get(full_key)
    if document is None:
        document = FrozenJson(build())
        with _lock:
            cache[full_key] = document
    return document


def document_response(key: Hashable, version: Hashable | None, build: Callable[[], Any]) -> Response:
    """``build()`` serialised (and gzipped) once per ``version`` (a service's ``version()``); per request
    when the version is None. Only the latest version of a document is kept: the aggregator's versions
    change with every metadata refresh, and 256 old 2 MB listings per worker were ~600 MB."""
    if version is None:
        return jsonify(build())
    cache = current_app.extensions.setdefault("frozen_json_versions", LRUCache(maxsize=256))
    slot = (key, api_root())
    with _lock:
        found = cache.get(slot)
    if found is not None and found[0] == version:
        return found[1].response()
    document = FrozenJson(build())
    with _lock:
        cache[slot] = (version, document)
    return document.response()


# Paging values any database takes (SQLite and PostgreSQL integers are 64-bit); larger ones were a 500.
MAX_LIMIT = 1_000_000
MAX_OFFSET = 1_000_000_000
_DIGITS = re.compile(r"[0-9]{1,12}")


def paging_arguments() -> tuple[int | None, int]:
    """``limit`` (1 … MAX_LIMIT, absent = everything) and ``offset`` (0 … MAX_OFFSET) query parameters;
    anything else is a 400 naming the accepted range. For job logs ``offset`` is the id of an entry."""
    return (integer_argument("limit", 1, MAX_LIMIT, None), integer_argument("offset", 0, MAX_OFFSET, 0))


def integer_argument(name: str, low: int, high: int, absent: int | None) -> int | None:
    return integer_value(name, request.args.get(name), low, high, absent)


def integer_value(name: str, text: str | None, low: int, high: int, absent: int | None) -> int | None:
    """``text`` (a query parameter ``name``) as a whole number within low … high; ``absent`` when empty;
    else a 400 naming the accepted range."""
    if not text:
        return absent
    value = whole_number(text, low, high)
    if value is None:
        raise errors.BadRequest(reason=f"'{name}' must be a whole number from {low:,} to {high:,}, not {text[:40]!r}")
    return value


def whole_number(text: str, low: int, high: int) -> int | None:
    """ASCII digits only (no "1e3", "+5", "1_000") within low … high; else None."""
    value = int(text) if _DIGITS.fullmatch(text) else None
    return value if value is not None and low <= value <= high else None
