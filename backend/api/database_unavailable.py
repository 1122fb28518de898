"""A database that cannot be reached (down, restarting, network cut, every pooled connection busy) answers
503 ``InfrastructureBusy`` with ``Retry-After``, not 500 ``Internal``: the request was fine and may be sent
again as it is. The engine's pool (``pool_pre_ping``) replaces broken connections, so the server recovers by
itself once the database is back (tests/reliability/test_faults_database.py)."""

from __future__ import annotations

import logging

from flask import Flask

from apicore import errors
from apicore.flask_support import error_response
from backend.storage.db import UNAVAILABLE

log = logging.getLogger(__name__)
RETRY_AFTER = 5  # seconds: a restarting PostgreSQL or a failover is usually back within a few


def unavailable_error() -> errors.OpenEOError:
    return errors.InfrastructureBusy(
        f"The service's database cannot be reached at the moment. Retry in {RETRY_AFTER} s (Retry-After); "
        "if this persists, contact the operator.")


def install(app: Flask) -> None:
    def _answer(exc: Exception):
        # one line, no traceback: during an outage every request fails the same way
        log.error("database unavailable: %s: %s", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        response = error_response(unavailable_error())
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

    for exc_class in UNAVAILABLE:
        app.register_error_handler(exc_class, _answer)
