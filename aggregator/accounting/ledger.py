"""``FederationAccounting``: the backend's ``Ledger`` and plans, used by the aggregator.

The backends measure and price the work; the aggregator charges what they report (``OpenEO-Costs`` of
``POST /result``, ``costs`` of a finished job) to the user's federation balance. A charge is the ledger's
own pair ``hold`` + ``settle`` under one ref per backend and request (or job run): both are idempotent by
ref, so reporting the same costs twice, or from two threads or processes at once, charges them once.
The hold is capped by the balance (a balance never goes below zero): costs beyond it are recorded as
reported but not charged. Which backend a charge came from is a row of ``federation_charges`` (not text
in the ledger's note), which the partners' usage report sums.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError

from aggregator.accounting.report import usage_report
from aggregator.storage.models import FederationCharge
from apicore import errors
from backend.accounting.ledger import Ledger, to_milli
from backend.accounting.pricing import Plan, check_budget, plan_for
from backend.storage.db import Database

log = logging.getLogger(__name__)

MAX_REF = 128  # the ledger's ref column
_HOLD_ATTEMPTS = 5


class Caller(Protocol):
    user_id: str
    name: str


def parse_costs(value: Any) -> float | None:
    """A backend's costs (a number, or the ``OpenEO-Costs`` header's text) as credits; None when absent
    or unusable (a garbage-speaking backend must not fail the user's request: it is logged instead)."""
    if value is None or value == "":
        return None
    try:
        costs = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        log.warning("ignoring unusable costs %r reported by a backend", value)
        return None
    if isinstance(value, bool) or not math.isfinite(costs) or costs < 0:
        log.warning("ignoring unusable costs %r reported by a backend", value)
        return None
    return costs


def ledger_ref(kind: str, backend_id: str, ref: str) -> str:
    """The ledger ref of a charge: readable when short, else the caller's ref hashed (fits 128 chars)."""
    readable = f"fed-{kind}:{backend_id}:{ref}"
    if len(readable) <= MAX_REF:
        return readable
    return f"fed-{kind}:{backend_id}:sha256:{hashlib.sha256(ref.encode()).hexdigest()[:40]}"


class FederationAccounting:
    """Thread-safe (all state is in the database)."""

    def __init__(self, db: Database, plans: list[Plan], free_credits: float = 0):
        self.db = db
        self.plans = plans
        self.ledger = Ledger(db, free_credits)

    def plan(self, name: str | None) -> Plan:
        """The plan of that name (None: the default plan); 400 BillingPlanInvalid for an unknown one."""
        return plan_for(self.plans, name)

    def balance(self, caller: Caller) -> float:
        return self.ledger.balance(caller.user_id)

    def preflight(self, caller: Caller, plan: Plan | str | None = None, budget: Any = None) -> float:
        """Before ``POST /result`` or a job start is forwarded: 402 PaymentRequired when the federation
        balance cannot cover the plan's fixed fee (400 for an unknown plan or a budget below that fee).
        Returns the balance. Nothing is reserved: the backend measures, the aggregator charges after."""
        plan = plan if isinstance(plan, Plan) else self.plan(plan)
        check_budget(budget, plan)
        balance = self.ledger.balance(caller.user_id)
        if balance < plan.fixed_fee:
            raise errors.PaymentRequired(
                f"Your federation balance of {balance:g} credits does not cover the fixed fee of "
                f"{plan.fixed_fee:g} credits of plan '{plan.name}'. Ask the operator for credits "
                "(GET /me shows your balance).")
        return balance

    def charge_result(self, caller: Caller, backend_id: str, request_ref: str, costs: Any) -> float:
        """Charge the ``OpenEO-Costs`` backend ``backend_id`` reported for one synchronous request, once
        per ``request_ref`` (the aggregator's request id). Returns the credits charged."""
        return self._charge(caller, backend_id, "result", request_ref, costs)

    def charge_job(self, caller: Caller, backend_id: str, job_ref: str, costs: Any) -> float:
        """Charge a job run's final ``costs``, once per ``job_ref``: name the run in it (e.g. the job id
        and the time it was started), so a restarted job is charged again and a re-polled one is not."""
        return self._charge(caller, backend_id, "job", job_ref, costs)

    def _charge(self, caller: Caller, backend_id: str, kind: str, ref: str, costs: Any) -> float:
        reported = parse_costs(costs) or 0.0
        lref = ledger_ref(kind, backend_id, ref)
        note = f"{kind} on backend {backend_id}: {ref}"[:500]
        user_id = caller.user_id
        charged = self._charge_once(user_id, lref, reported, note) if reported > 0 else 0.0
        if charged < reported:
            log.warning("user %s could not pay all of %g credits reported by backend %s for %s (charged %g)",
                        user_id, reported, backend_id, ref, charged)
        self._attribute(user_id, backend_id, kind, ref, lref, reported, charged)
        return charged

    def _charge_once(self, user_id: str, lref: str, reported: float, note: str) -> float:
        for _ in range(_HOLD_ATTEMPTS):  # a concurrent charge may spend the balance read here: read again
            if self.ledger.hold(user_id, lref, min(reported, self.ledger.balance(user_id)), note):
                break
        else:
            self.ledger.hold(user_id, lref, 0.0, note)
        return self.ledger.settle(user_id, lref, reported, note)

    def _attribute(self, user_id: str, backend_id: str, kind: str, ref: str, lref: str, reported: float,
                   charged: float) -> None:
        try:
            with self.db.session() as session:
                session.add(FederationCharge(user_id=user_id, backend_id=backend_id, kind=kind, ref=ref[:255],
                                             ledger_ref=lref, reported=to_milli(reported), charged=to_milli(charged)))
        except IntegrityError:
            pass  # attributed before (the same costs reported again)

    def usage_report(self, since=None, until=None, backend_id: str | None = None,
                     user_id: str | None = None) -> list[dict]:
        """Per backend and user: synchronous requests, job runs, credits reported and charged."""
        return usage_report(self.db, since=since, until=until, backend_id=backend_id, user_id=user_id)

    def me_document(self, caller: Caller, root: str) -> dict:
        """``GET /me``: the caller and the federation's balance as ``budget``."""
        return {
            "user_id": caller.user_id,
            "name": caller.name,
            "budget": self.ledger.balance(caller.user_id),
            "default_plan": self.plans[0].name,
            "links": [{"rel": "related", "href": f"{root.rstrip('/')}/process_graphs",
                       "title": "User-defined processes"}],
        }
