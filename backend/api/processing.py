"""Synchronous processing: POST /result."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from flask import Blueprint, send_file

from apicore import errors
from apicore.flask_support import error_response
from backend.accounting.holds import place_hold
from backend.accounting.pricing import caused_by_user, check_budget, failure_costs, plan_for, usage_document
from backend.accounting.usage import SyncUsageMeter
from backend.api.context import api_root, json_body, require_user, services
from backend.processing.engine.executor import RunContext
from backend.processing.sync import execute_process

log = logging.getLogger(__name__)
bp = Blueprint("processing", __name__)


@bp.post("/result")
def compute_result():
    user = require_user()
    body = json_body()
    body = body if isinstance(body, dict) else {}
    svc = services()
    settings = svc.settings
    plan = plan_for(settings.plans, body.get("plan"))
    budget = check_budget(body.get("budget"), plan)
    request_id = uuid.uuid4().hex
    ref = f"sync-{request_id}"
    context = RunContext(user_id=user.user_id, services=svc, api_root=api_root(),
                         udp_lookup=lambda process_id: svc.udps.get(user.user_id, process_id),
                         max_pixels=settings.sync_max_pixels)
    with svc.sync_slots.take() as slot:  # none free in time: 503 with Retry-After, before anything is held
        place_hold(svc.ledger, user.user_id, ref, plan, budget, settings.sync_hold)
        meter = SyncUsageMeter()
        work_dir = Path(tempfile.mkdtemp(prefix="openeo-result-"))
        started = time.perf_counter()
        try:
            written = execute_process(body.get("process"), svc.implementations, context, work_dir, slot,
                                      settings.sync_timeout, meter)
            response = send_file(written.path, mimetype=written.media_type, download_name=written.filename,
                                 conditional=False)
        except BaseException as exc:
            shutil.rmtree(work_dir, ignore_errors=True)
            _settle_failure(svc.ledger, user.user_id, ref, plan, meter, context, exc)
            raise
    usage = usage_document(meter.cpu_seconds, meter.memory_gb_seconds, context.input_values,
                           time.perf_counter() - started, written.path.stat().st_size)
    costs = svc.ledger.settle(user.user_id, ref, plan.costs(usage), note="POST /result")
    response.call_on_close(lambda: shutil.rmtree(work_dir, ignore_errors=True))
    response.headers["OpenEO-Identifier"] = request_id
    response.headers["OpenEO-Costs"] = f"{costs:g}"
    return response


@bp.errorhandler(errors.InfrastructureBusy)
def _busy(error: errors.OpenEOError):
    log.warning("POST /result refused: every synchronous slot of this worker is busy")
    response = error_response(error)
    response.headers["Retry-After"] = str(getattr(error, "retry_after", 1))
    return response


def _settle_failure(ledger, user_id: str, ref: str, plan, meter, context, exc: BaseException) -> None:
    """A failed request pays the rule batch jobs pay too (``failure_costs``): what it used, without the
    fixed fee, when the user caused the failure (an openEO 4xx: e.g. a bad argument, the time limit);
    nothing when the backend did (5xx, or any other exception)."""
    user_caused = isinstance(exc, errors.OpenEOError) and caused_by_user(exc.code, exc.status)
    used = usage_document(meter.cpu_seconds, meter.memory_gb_seconds, context.input_values, 0, 0)
    ledger.settle(user_id, ref, failure_costs(plan, used, user_caused),
                  note=f"POST /result failed: {getattr(exc, 'code', type(exc).__name__)}")
