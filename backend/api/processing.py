"""Synchronous processing: POST /result."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from flask import Blueprint, send_file

from backend.api.context import api_root, json_body, require_user, services
from backend.processing.engine.executor import RunContext
from backend.processing.sync import execute_process

bp = Blueprint("processing", __name__)


@bp.post("/result")
def compute_result():
    user = require_user()
    body = json_body()
    process = body.get("process") if isinstance(body, dict) else None
    svc = services()
    settings = svc.settings
    context = RunContext(user_id=user.user_id, services=svc, api_root=api_root(),
                         udp_lookup=lambda process_id: svc.udps.get(user.user_id, process_id),
                         max_pixels=settings.sync_max_pixels)
    work_dir = Path(tempfile.mkdtemp(prefix="openeo-result-"))
    try:
        written = execute_process(process, svc.implementations, context, work_dir, settings.sync_threads,
                                  settings.sync_timeout)
        response = send_file(written.path, mimetype=written.media_type, download_name=written.filename,
                             conditional=False)
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    response.call_on_close(lambda: shutil.rmtree(work_dir, ignore_errors=True))
    response.headers["OpenEO-Identifier"] = uuid.uuid4().hex
    return response
