"""The gunicorn worker of `openeo-backend serve`: gthread, with gunicorn's own error answers as openEO JSON.

gunicorn rejects some requests before the app sees them — a request line over ``LIMIT_REQUEST_LINE``
bytes (414), a header over ``LIMIT_REQUEST_FIELD_SIZE`` bytes or more than ``LIMIT_REQUEST_FIELDS``
headers (431), a malformed request line or header (400) — and answers them with an HTML page. Clients
expect openEO error JSON for every error, so this worker keeps gunicorn's decision (status, reason,
detail) and only changes how it is written: ``{"id", "code", "message", "links"}`` with
``Content-Type: application/json``, the CORS header and a ``Request-Id``.

gunicorn writes those answers through ``gunicorn.util.write_error``; the worker points that name at
``write_openeo_error`` in its own process when it starts (each worker process, after the fork).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.workers.gthread import ThreadWorker

from apicore.flask_support import REQUEST_ID_HEADER

log = logging.getLogger(__name__)

# gunicorn's defaults, set explicitly so the messages can name them (its maximum request line is 8190).
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELD_SIZE = 8190
LIMIT_REQUEST_FIELDS = 100

# Codes for statuses that errors.json has no code for (documented in the README, Errors).
CODES = {414: "UriTooLong", 431: "RequestHeaderFieldsTooLarge", 500: "Internal", 501: "FeatureUnsupported"}
ADVICE = {
    414: (f"The request line (method, path and query string) is longer than {LIMIT_REQUEST_LINE} bytes: send "
          "large inputs in the body of a POST request instead of the URL."),
    431: (f"A request header is longer than {LIMIT_REQUEST_FIELD_SIZE} bytes, or there are more than "
          f"{LIMIT_REQUEST_FIELDS} headers: shorten it (e.g. a smaller access token or fewer cookies)."),
    400: "The server could not parse this HTTP request: check the request line and headers.",
}


def error_document(status: int, reason: str, detail: str, request_id: str) -> dict:
    code = CODES.get(status, "BadRequest")
    message = ADVICE.get(status, f"{reason}.")
    if detail:
        message = f"{message} ({detail})"
    return {"id": request_id, "code": code, "message": message, "links": []}


def write_openeo_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``write_error(sock, status_int, reason, mesg)``, answering openEO error JSON."""
    request_id = uuid.uuid4().hex
    body = json.dumps(error_document(status_int, reason, mesg, request_id)).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Access-Control-Allow-Origin: *\r\n"
            f"{REQUEST_ID_HEADER}: {request_id}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class OpenEOThreadWorker(ThreadWorker):
    """gunicorn's gthread worker whose own error answers are openEO JSON."""

    def init_process(self) -> None:
        util.write_error = write_openeo_error  # this worker process only (after the fork)
        super().init_process()


GUNICORN_OPTIONS = {
    "worker_class": OpenEOThreadWorker,
    "limit_request_line": LIMIT_REQUEST_LINE,
    "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
    "limit_request_fields": LIMIT_REQUEST_FIELDS,
}


def warn_about_threads() -> None:
    """Runs in the arbiter right before each fork: another thread there could hold a lock (logging, the
    import lock, a pool) that would stay locked forever in the new web worker."""
    others = [thread.name for thread in threading.enumerate() if thread is not threading.current_thread()]
    if others:
        log.warning("forking a web worker while the arbiter runs other threads: %s", ", ".join(others))


def no_control_socket() -> dict:
    """gunicorn >= 25.1 serves a control socket from a thread of the arbiter, by default at one path per
    user (~/.gunicorn/gunicorn.ctl), so a second server on the machine takes it over; we do not use it."""
    from gunicorn.config import KNOWN_SETTINGS

    return {"control_socket_disable": True} if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else {}


class EmbeddedGunicorn(BaseApplication):
    """gunicorn serving an app object built in this process, with its options from a dict; a start failure
    (e.g. the port is taken) ends the process with gunicorn's message rather than a traceback. Subclasses
    choose the arbiter (``arbiter()``)."""

    def __init__(self, app, options: dict):
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app

    def arbiter(self) -> Arbiter:
        return Arbiter(self)

    def run(self):
        try:
            self.arbiter().run()
        except RuntimeError as exc:
            print(f"\nError: {exc}\n", file=sys.stderr)
            sys.exit(1)
