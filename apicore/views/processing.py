"""Synchronous processing: POST /result, answered with the service's Download (a local file or a stream)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, send_file
from werkzeug.wsgi import ClosingIterator

from apicore import errors
from apicore.flask_support import error_response
from apicore.services import Download
from apicore.views.context import api, api_root, json_body, require_caller

log = logging.getLogger(__name__)
bp = Blueprint("processing", __name__)


@bp.post("/result")
def compute_result():
    caller = require_caller()
    body = json_body()
    download = api().processing.result(caller, body if isinstance(body, dict) else {}, api_root())
    try:
        return download_response(download)
    except BaseException:
        download.close()
        raise


def download_response(download: Download) -> Response:
    """The response of a Download; its cleanup runs once the body no longer needs it.

    A local file is opened here and its cleanup runs at once: the open file stays readable after it is
    deleted (POSIX), and the server can still send it with sendfile(). (A ``call_on_close`` callback never
    runs for send_file's responses: werkzeug hands their file wrapper to the server as is.) A stream's
    cleanup runs when the server closes it, after sending it or when the client went away."""
    if download.path is not None:
        response = send_file(download.path, mimetype=download.media_type, download_name=download.filename,
                             conditional=False)
        download.close()
    else:
        response = Response(ClosingIterator(download.chunks, download.close), mimetype=download.media_type,
                            direct_passthrough=True)
        if download.size is not None:
            response.content_length = download.size
        if download.filename:
            response.headers.set("Content-Disposition", "inline", filename=download.filename)
    for name, value in download.headers.items():
        response.headers[name] = value
    return response


@bp.errorhandler(errors.InfrastructureBusy)
def _busy(error: errors.OpenEOError):
    log.warning("POST /result refused: every synchronous slot of this worker is busy")
    response = error_response(error)
    response.headers["Retry-After"] = str(getattr(error, "retry_after", 1))
    return response
