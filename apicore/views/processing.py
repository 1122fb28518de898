"""Synchronous processing: POST /result, answered with the service's Download (a local file or a stream)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, send_file

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
        response = download_response(download)
    except BaseException:
        download.close()
        raise
    response.call_on_close(download.close)
    return response


def download_response(download: Download) -> Response:
    if download.path is not None:
        response = send_file(download.path, mimetype=download.media_type, download_name=download.filename,
                             conditional=False)
    else:
        response = Response(download.chunks, mimetype=download.media_type, direct_passthrough=True)
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
