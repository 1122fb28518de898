"""The file workspace: GET /files (paged), GET/PUT/DELETE /files/{path}, each caller's own files only.

Mounted only when the implementation offers a files service (``OpenEOServices.files``), so the capabilities
list these routes exactly when they work. Paths are checked here (``apicore/file_paths.py``) before the
service sees them. Uploads stream: the body is handed to the service unread and is bounded by the
service's quota, not by the app's ``max_request_bytes``.
"""

from __future__ import annotations

import sys
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request, send_file
from werkzeug.routing import PathConverter

from apicore import errors
from apicore.file_paths import MAX_PATH_CHARS, checked_file_path
from apicore.views.context import MAX_LIMIT, api, api_root, integer_argument, require_caller
from apicore.views.processing import download_response

bp = Blueprint("files", __name__)


class FilePathConverter(PathConverter):
    """werkzeug's ``path`` without its refusal of a leading '/': '/files//etc/passwd' must reach the path
    check (400 FilePathInvalid), not end as a 404 or 405. Registered on the app as ``filepath``."""

    # Any first character ('/' too), then anything, line breaks too; spelled with a '/' so that werkzeug's
    # matcher lets it span path segments (it finds no match for ".+?").
    regex = r"(?:/|[^/])[\s\S]*?"


# After refusing an upload, read (and drop) up to this much of the unread body so the client, still
# sending, gets the error response instead of a connection reset; a larger rest is left unread.
DRAIN_LIMIT = 256 * 1024 * 1024
DRAIN_BLOCK = 1024 * 1024


@bp.get("/files")
def list_files():
    caller = require_caller()
    limit = integer_argument("limit", 1, MAX_LIMIT, None)
    page = request.args.get("page") or None
    if page is not None and len(page) > MAX_PATH_CHARS:
        raise errors.BadRequest(reason="'page' must be a token from the 'next' link of a previous listing")
    root = api_root()
    listing, next_page = api().files.listing(caller, limit, page)
    links = []
    if next_page is not None:
        query = urlencode({"limit": limit, "page": next_page} if limit is not None else {"page": next_page})
        links.append({"rel": "next", "href": f"{root}/files?{query}", "type": "application/json"})
    return jsonify({**listing, "links": links})


# merge_slashes=False: '/files/a//b' must reach the path check (FilePathInvalid), not a redirect.
@bp.get("/files/<filepath:path>", merge_slashes=False)
def download_file(path: str):
    caller = require_caller()
    download = api().files.download(caller, checked_file_path(path))
    if download.path is None:
        return download_response(download)
    try:  # a local file: werkzeug answers HEAD, Range (206/416) and conditional requests
        return send_file(download.path, mimetype=download.media_type, download_name=download.filename,
                         conditional=True, etag=True)
    finally:
        download.close()


@bp.put("/files/<filepath:path>", merge_slashes=False)
def upload_file(path: str):
    caller = require_caller()
    # Not max_request_bytes: an upload is bounded by the caller's quota instead (the service checks it).
    # (None would fall back to the app's MAX_CONTENT_LENGTH.)
    request.max_content_length = sys.maxsize
    try:
        checked = checked_file_path(path)
        entry = api().files.upload(caller, checked, request.stream, request.content_length)
    except errors.OpenEOError:
        _drain(request.stream)
        raise
    return jsonify(entry)


@bp.delete("/files/<filepath:path>", merge_slashes=False)
def delete_file(path: str):
    api().files.delete(require_caller(), checked_file_path(path))
    return Response(status=204)


def _drain(stream) -> None:
    remaining = DRAIN_LIMIT
    try:
        while remaining > 0:
            block = stream.read(min(DRAIN_BLOCK, remaining))
            if not block:
                return
            remaining -= len(block)
    except Exception:  # noqa: BLE001 - the client went away: nothing left to answer
        return
