"""Flask wiring both apps share: request ids, CORS, OPTIONS, JSON errors, generated endpoint list."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, current_app, Response, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from apicore import errors

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "Request-Id"
EXPOSED_HEADERS = f"Location, OpenEO-Identifier, OpenEO-Costs, Link, Retry-After, {REQUEST_ID_HEADER}"
ALLOWED_REQUEST_HEADERS = "Authorization, Content-Type, Range"


class RequestIdLogFilter(logging.Filter):
    """Adds ``request_id`` to every log record (``-`` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(level: str) -> None:
    """One handler on the root logger whose lines carry the request id (once per process)."""
    root = logging.getLogger()
    if any(getattr(h, "_openeo", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._openeo = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())


def current_request_id() -> str:
    return g.get("request_id", "") if has_request_context() else ""


def error_response(error: errors.OpenEOError) -> Response:
    response = jsonify(error.to_dict(current_request_id()))
    response.status_code = error.status
    return response


def _translate_http_exception(exc: HTTPException) -> errors.OpenEOError:
    if isinstance(exc, NotFound):
        return errors.NotFound(f"No such endpoint: {request.method} {request.path}. See GET / for the endpoints.")
    if isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(sorted(exc.valid_methods or []))
        return errors.MethodNotAllowed(method=request.method, path=request.path, allowed=allowed)
    if isinstance(exc, RequestEntityTooLarge):
        return errors.PayloadTooLarge(limit=request.max_content_length)
    error = errors.BadRequest(reason=exc.description or exc.name)
    error.status = exc.code or 400
    return error


def install(app: Flask) -> None:
    """Request ids, CORS headers on every response, OPTIONS 204 everywhere, openEO JSON for every error."""
    app.json.sort_keys = False  # keeps cube:dimensions and band order as written

    @app.before_request
    def _start_request():
        g.request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        if request.method == "OPTIONS":
            return _preflight_response()
        _refuse_nul_characters()
        return None

    @app.after_request
    def _add_headers(response: Response) -> Response:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        return response

    @app.errorhandler(errors.OpenEOError)
    def _openeo_error(error: errors.OpenEOError):
        level = logging.ERROR if error.status >= 500 else logging.INFO
        log.log(level, "%s %s -> %s %s: %s", request.method, request.path, error.status, error.code, error.message)
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return _openeo_error(_translate_http_exception(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(errors.Internal(message=f"unexpected {type(exc).__name__}; quote the request id "
                                              "to the operator"))


def _refuse_nul_characters() -> None:
    """No id, path or parameter of the API holds a NUL character, and PostgreSQL refuses one in any text value
    (a DataError: it was a 500 for every id route): refuse the request before anything looks it up."""
    if "\x00" in request.path or any("\x00" in key or "\x00" in value
                                     for key, value in request.args.items(multi=True)):
        raise errors.BadRequest(reason="the URL contains a NUL character (%00), which no identifier, path or "
                                       "parameter of this API holds")


def _preflight_response() -> Response:
    """OPTIONS is answered before dispatch, for every path, listing the methods implemented there."""
    methods = set(current_app.url_map.bind_to_environ(request.environ).allowed_methods())
    allowed = sorted((methods - {"HEAD"}) | {"OPTIONS"})
    response = Response(status=204, content_type="application/json")
    response.headers["Access-Control-Allow-Methods"] = ", ".join(allowed)
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
    return response


def registered_endpoints(app: Flask, prefix: str) -> list[dict]:
    """The capabilities ``endpoints`` list, generated from the routes actually registered under ``prefix``."""
    by_path: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefix) or rule.endpoint == "static" or "/.well-known/" in rule.rule:
            continue
        path = rule.rule[len(prefix):] or "/"
        path = path.replace("<", "{").replace(">", "}")
        path = _strip_converters(path)
        by_path.setdefault(path, set()).update(m for m in rule.methods if m not in ("HEAD", "OPTIONS"))
    # The spec asks not to list GET / itself.
    return [{"path": path, "methods": sorted(methods)} for path, methods in sorted(by_path.items())
            if methods and path != "/"]


def _strip_converters(path: str) -> str:
    """``{string:job_id}`` → ``{job_id}``."""
    parts = []
    for piece in path.split("{"):
        if ":" in piece.split("}")[0]:
            piece = piece.split(":", 1)[1]
        parts.append(piece)
    return "{".join(parts)
