"""The backend's synchronous processing and validation (apicore.services.ProcessingService): credits held
before the computation and settled after it, on one of this worker's sync slots."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

from apicore import errors
from apicore.services import Download
from backend.accounting.holds import place_hold
from backend.accounting.pricing import caused_by_user, check_budget, failure_costs, plan_for, usage_document
from backend.accounting.usage import SyncUsageMeter
from backend.processing.engine.executor import RunContext
from backend.processing.sync import execute_process
from backend.processing.validation import validate_process
from backend.services import Services
from backend.storage.models import User


class BackendProcessing:
    def __init__(self, parts: Services):
        self.parts = parts

    def result(self, caller: User, body: dict, root: str) -> Download:
        svc = self.parts
        settings = svc.settings
        plan = plan_for(settings.plans, body.get("plan"))
        budget = check_budget(body.get("budget"), plan)
        request_id = uuid.uuid4().hex
        ref = f"sync-{request_id}"
        context = self._context(caller, root, max_pixels=settings.sync_max_pixels)
        with svc.sync_slots.take() as slot:  # none free in time: 503 with Retry-After, before anything is held
            place_hold(svc.ledger, caller.user_id, ref, plan, budget, settings.sync_hold)
            meter = SyncUsageMeter()
            work_dir = Path(tempfile.mkdtemp(prefix="openeo-result-"))
            remove = lambda: shutil.rmtree(work_dir, ignore_errors=True)  # noqa: E731
            started = time.perf_counter()
            try:
                written = execute_process(body.get("process"), svc.implementations, context, work_dir, slot,
                                          settings.sync_timeout, meter)
            except BaseException as exc:
                remove()
                settle_failure(svc.ledger, caller.user_id, ref, plan, meter, context, exc)
                raise
        try:
            usage = usage_document(meter.cpu_seconds, meter.memory_gb_seconds, context.input_values,
                                   time.perf_counter() - started, written.path.stat().st_size)
            costs = svc.ledger.settle(caller.user_id, ref, plan.costs(usage), note="POST /result")
            for owner_id, process_id in context.published_calls:
                svc.udps.record_run(owner_id, process_id, costs)
        except BaseException:
            remove()
            raise
        return Download(media_type=written.media_type, path=written.path, filename=written.filename,
                        headers={"OpenEO-Identifier": request_id, "OpenEO-Costs": f"{costs:g}"}, cleanup=remove)

    def validate(self, caller: User | None, body: dict, root: str) -> dict:
        return {"errors": validate_process(body, self._context(caller, root))}

    def _context(self, caller: User | None, root: str, **limits) -> RunContext:
        """What the evaluator and validator need of this request; anonymous callers have no UDPs."""
        if caller is None:
            return RunContext(services=self.parts, api_root=root, **limits)
        udps, user_id = self.parts.udps, caller.user_id
        return RunContext(user_id=user_id, services=self.parts, api_root=root,
                          udp_lookup=lambda process_id: udps.get(user_id, process_id), **limits)


def settle_failure(ledger, user_id: str, ref: str, plan, meter, context, exc: BaseException,
                   what: str = "POST /result") -> None:
    """A failed request pays the rule batch jobs pay too (``failure_costs``): what it used, without the
    fixed fee, when the user caused the failure (an openEO 4xx: e.g. a bad argument, the time limit);
    nothing when the backend did (5xx, or any other exception)."""
    user_caused = isinstance(exc, errors.OpenEOError) and caused_by_user(exc.code, exc.status)
    used = usage_document(meter.cpu_seconds, meter.memory_gb_seconds, context.input_values, 0, 0)
    ledger.settle(user_id, ref, failure_costs(plan, used, user_caused),
                  note=f"{what} failed: {getattr(exc, 'code', type(exc).__name__)}")
