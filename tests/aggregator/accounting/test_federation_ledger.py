"""The federation's ledger (the backend's Ledger on the aggregator's database), on SQLite and PostgreSQL:
the balance check before work, backend costs charged exactly once (also when reported twice or from
many threads at once), costs above the balance, the per-backend usage report, /me."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from aggregator.accounting import FederationAccounting, parse_costs, render_usage_report
from aggregator.storage.models import FederationCharge
from apicore import errors
from backend.accounting.pricing import Plan
from backend.storage.users import UserStore

PLANS = [Plan(name="free", description="default", fixed_fee=1.0), Plan(name="pro", description="p", fixed_fee=5)]


@dataclass(frozen=True)
class Caller:
    user_id: str
    name: str


def new_caller(db) -> Caller:
    user = UserStore(db).add(f"u-{uuid.uuid4().hex[:8]}", "pw")
    return Caller(user.user_id, user.name)


def reconcile(accounting: FederationAccounting, caller: Caller) -> float:
    balance = accounting.balance(caller)
    assert balance == pytest.approx(accounting.ledger.sum_of_entries(caller.user_id), abs=1e-9)
    return balance


def test_preflight(db):
    broke = FederationAccounting(db, PLANS, free_credits=0)
    caller = new_caller(db)
    with pytest.raises(errors.PaymentRequired, match="balance of 0 credits does not cover the fixed fee of 1 "
                                                     "credits of plan 'free'") as raised:
        broke.preflight(caller)
    assert raised.value.status == 402
    accounting = FederationAccounting(db, PLANS, free_credits=3)
    rich = new_caller(db)
    assert accounting.preflight(rich) == 3
    with pytest.raises(errors.PaymentRequired, match="fixed fee of 5 credits of plan 'pro'"):
        accounting.preflight(rich, "pro")
    with pytest.raises(errors.BillingPlanInvalid):
        accounting.preflight(rich, "gold")
    with pytest.raises(errors.BudgetInvalid):
        accounting.preflight(rich, None, budget=0.5)
    assert accounting.balance(rich) == 3  # a check reserves nothing


def test_charge_is_recorded_once_however_often_reported(db):
    accounting = FederationAccounting(db, PLANS, free_credits=100)
    caller = new_caller(db)
    assert accounting.charge_result(caller, "b1", "req-1", "2.5") == 2.5  # the OpenEO-Costs header's text
    assert accounting.charge_result(caller, "b1", "req-1", "2.5") == 2.5  # reported again: no new charge
    assert accounting.charge_job(caller, "b2", "job-7@2026-12-05T10:00:00Z", 10) == 10
    assert accounting.charge_job(caller, "b2", "job-7@2026-12-05T10:00:00Z", 10) == 10
    assert accounting.charge_job(caller, "b2", "job-7@2026-12-05T11:00:00Z", 4) == 4  # a re-run: its own charge
    assert reconcile(accounting, caller) == pytest.approx(100 - 2.5 - 10 - 4)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(FederationCharge)) == 3


def test_concurrent_reports_charge_once(db):
    accounting = FederationAccounting(db, PLANS, free_credits=100)
    caller = new_caller(db)
    barrier = threading.Barrier(8)

    def report(_):
        barrier.wait()
        return accounting.charge_job(caller, "b1", "job-1@run-1", 7.25)

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(report, range(8))) == [7.25] * 8
    assert reconcile(accounting, caller) == pytest.approx(92.75)
    charges = [e for e in accounting.ledger.entries(caller.user_id) if e.kind == "charge"]
    assert [e.amount for e in charges] == [-7.25]
    assert accounting.usage_report()[0]["jobs"] == 1


def test_concurrent_charges_never_overdraw(db):
    accounting = FederationAccounting(db, PLANS, free_credits=10)
    caller = new_caller(db)
    with ThreadPoolExecutor(8) as pool:
        charged = list(pool.map(lambda i: accounting.charge_result(caller, "b1", f"req-{i}", 3), range(8)))
    assert sum(charged) == pytest.approx(10)  # 3+3+3+1, then nothing left
    assert reconcile(accounting, caller) == 0
    report = accounting.usage_report()
    assert (report[0]["requests"], report[0]["reported"], report[0]["credits"]) == (8, 24, 10)


def test_unusable_or_missing_costs_charge_nothing_but_count(db):
    accounting = FederationAccounting(db, PLANS, free_credits=5)
    caller = new_caller(db)
    for ref, costs in [("a", None), ("b", "garbage"), ("c", -3), ("d", float("nan")), ("e", True)]:
        assert accounting.charge_result(caller, "b1", ref, costs) == 0
    assert accounting.balance(caller) == 5
    assert accounting.usage_report()[0]["requests"] == 5
    assert [parse_costs(v) for v in (" 1.5 ", 2, 0, "", "inf")] == [1.5, 2.0, 0.0, None, None]


def test_long_refs_fit_the_ledger(db):
    accounting = FederationAccounting(db, PLANS, free_credits=5)
    caller = new_caller(db)
    ref = "job-" + "x" * 300
    assert accounting.charge_job(caller, "b" * 64, ref, 1) == 1
    assert accounting.charge_job(caller, "b" * 64, ref, 1) == 1
    assert accounting.balance(caller) == 4


def test_usage_report_per_backend_and_user(db):
    accounting = FederationAccounting(db, PLANS, free_credits=100)
    ada, bob = new_caller(db), new_caller(db)
    accounting.charge_result(ada, "b1", "r1", 1.5)
    accounting.charge_result(ada, "b1", "r2", 2)
    accounting.charge_job(ada, "b1", "j1@1", 10)
    accounting.charge_job(ada, "b2", "j2@1", 3)
    accounting.charge_result(bob, "b2", "r3", 0.25)
    accounting.charge_result(bob, "b2", "r3", 0.25)  # once
    rows = accounting.usage_report()
    assert [(r["backend"], r["user"], r["requests"], r["jobs"], r["credits"]) for r in rows] == sorted([
        ("b1", ada.name, 2, 1, 13.5), ("b2", ada.name, 0, 1, 3.0), ("b2", bob.name, 1, 0, 0.25)])
    assert [r["user"] for r in accounting.usage_report(backend_id="b2", user_id=bob.user_id)] == [bob.name]
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    assert accounting.usage_report(since=tomorrow) == []
    csv = render_usage_report(accounting.usage_report(backend_id="b1"))
    assert csv.splitlines()[0] == "backend,user,user_id,requests,jobs,reported,credits,first,last"
    assert csv.splitlines()[1].startswith(f"b1,{ada.name},{ada.user_id},2,1,13.5,13.5,")


def test_me_document_shows_the_federation_balance(db):
    accounting = FederationAccounting(db, PLANS, free_credits=42)
    caller = new_caller(db)
    accounting.charge_result(caller, "b1", "r1", 2)
    assert accounting.me_document(caller, "http://agg.example/openeo/1.2/") == {
        "user_id": caller.user_id, "name": caller.name, "budget": 40.0, "default_plan": "free",
        "links": [{"rel": "related", "href": "http://agg.example/openeo/1.2/process_graphs",
                   "title": "User-defined processes"}]}


def test_free_requests_are_counted_without_ledger_entries(db):
    accounting = FederationAccounting(db, PLANS, free_credits=5)
    caller = new_caller(db)
    assert accounting.charge_result(caller, "b1", "r1", "0") == 0
    assert accounting.charge_result(caller, "b1", "r1", "0") == 0
    assert list(accounting.ledger.entries(caller.user_id)) == []  # the ledger is not touched
    assert [(r["requests"], r["credits"]) for r in accounting.usage_report()] == [(1, 0.0)]
