"""Request-scoped helpers for the blueprints: services, the API root URL, the caller, the JSON body."""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Callable


from cachetools import LRUCache
from flask import current_app, g, request

from apicore import errors
from apicore.frozen_json import FrozenJson
from backend.services import Services
from backend.settings import API_PREFIX
from backend.storage.models import User

_frozen_lock = threading.Lock()
_roots: LRUCache = LRUCache(maxsize=64)  # (scheme, Host header, server name, port) -> API root


def services() -> Services:
    return current_app.extensions["openeo_backend"]


def api_root() -> str:
    """Absolute URL of the API root without a trailing slash, e.g. http://host:8080/openeo/1.2."""
    public = services().settings.public_url
    if public:
        return public.rstrip("/") + API_PREFIX
    environ = request.environ
    key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
           environ.get("SERVER_PORT"))
    with _frozen_lock:  # cachetools caches are not thread-safe, not even for reads
        root = _roots.get(key)
    if root is None:  # werkzeug's host_url costs ~12 µs; cached documents are served in ~80 µs
        root = request.host_url.rstrip("/") + API_PREFIX
        with _frozen_lock:
            _roots[key] = root
    return root


def optional_user() -> User | None:
    if "user" not in g:
        g.user = services().authenticator.user_from_header(request.headers.get("Authorization"))
    return g.user


def require_user() -> User:
    user = optional_user()
    if user is None:
        raise errors.AuthenticationRequired(
            "This endpoint needs authentication: send 'Authorization: Bearer basic//<token>' "
            "(see GET /credentials/basic) or 'Bearer oidc/<provider>/<token>' (see GET /credentials/oidc).")
    return user


def json_body() -> Any:
    if not request.is_json:
        raise errors.UnsupportedMediaType(expected="application/json", got=request.mimetype or "none")
    try:
        return json.loads(request.get_data(cache=True))
    except ValueError as exc:
        raise errors.JsonInvalid(reason=str(exc)) from None
    except RecursionError:
        raise errors.JsonInvalid(reason="it is nested too deeply") from None


def frozen(key: str, build: Callable[[], Any]) -> FrozenJson:
    """A serialised-once document of this app, keyed by the API root too (hrefs differ per host name)."""
    cache = current_app.extensions.setdefault("frozen_json", LRUCache(maxsize=256))
    full_key = (key, api_root())
    with _frozen_lock:  # cachetools caches are not thread-safe
        document = cache.get(full_key)
    if document is None:
        document = FrozenJson(build())
        with _frozen_lock:
            cache[full_key] = document
    return document


# Paging values any database takes (SQLite and PostgreSQL integers are 64-bit); larger ones were a 500.
MAX_LIMIT = 1_000_000
MAX_OFFSET = 1_000_000_000
_DIGITS = re.compile(r"[0-9]{1,12}")


def paging_arguments() -> tuple[int | None, int]:
    """``limit`` (1 … MAX_LIMIT, absent = everything) and ``offset`` (0 … MAX_OFFSET) query parameters;
    anything else is a 400 naming the accepted range. For job logs ``offset`` is the id of an entry."""
    return (_integer_argument("limit", 1, MAX_LIMIT, None), _integer_argument("offset", 0, MAX_OFFSET, 0))


def _integer_argument(name: str, low: int, high: int, absent: int | None) -> int | None:
    text = request.args.get(name)
    if not text:
        return absent
    value = int(text) if _DIGITS.fullmatch(text) else None  # ASCII digits only: no "1e3", "+5", "1_000"
    if value is None or not low <= value <= high:
        raise errors.BadRequest(reason=f"'{name}' must be a whole number from {low:,} to {high:,}, not {text[:40]!r}")
    return value
