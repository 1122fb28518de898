"""The credit ledger on SQLite and a real PostgreSQL: holds never overdraw, settlements are idempotent,
and every balance equals the sum of its entries."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from apicore import errors
from backend.accounting.holds import place_hold
from backend.accounting.ledger import Ledger
from backend.accounting.pricing import Plan
from backend.storage.users import UserStore

PLAN = Plan(name="free", description="test", fixed_fee=1.0)


def new_user(db) -> str:
    return UserStore(db).add(f"u{time.monotonic_ns()}", "pw").user_id


def reconcile(ledger: Ledger, user: str) -> float:
    balance = ledger.balance(user)
    assert balance == pytest.approx(ledger.sum_of_entries(user), abs=1e-9)
    assert balance >= 0
    return balance


def test_free_credits_once_and_grants(db):
    ledger = Ledger(db, free_credits=1000)
    user = new_user(db)
    assert ledger.balance(user) == 1000
    assert ledger.balance(user) == 1000  # granted once
    assert ledger.grant(user, 25.5, note="top-up") == 1025.5
    assert ledger.grant(user, -5000, note="correction") == 0  # never below zero
    assert [e.kind for e in ledger.entries(user)] == ["grant", "grant", "grant"]
    reconcile(ledger, user)


def test_monthly_top_up_is_granted_once_per_month(db):
    ledger = Ledger(db, free_credits=10, monthly_free_credits=5)
    user = new_user(db)
    for _ in range(3):
        ledger.balance(user)
    assert ledger.balance(user) == 15
    assert sorted(e.ref for e in ledger.entries(user))[0] == "free-credits"


def test_hold_settle_is_idempotent_and_capped(db):
    ledger = Ledger(db, free_credits=100)
    user = new_user(db)
    assert place_hold(ledger, user, "job-1", PLAN, budget=30, wanted=50) == 30  # capped by the budget
    assert ledger.balance(user) == 70 and ledger.held("job-1") == 30
    assert ledger.settle(user, "job-1", 45.0) == 30  # actual costs above the hold: capped
    assert ledger.settle(user, "job-1", 45.0) == 30  # a repeated completion message changes nothing
    assert ledger.balance(user) == 70 and ledger.held("job-1") == 0
    assert ledger.refund(user, "job-1", note="backend failure") == 30
    assert ledger.refund(user, "job-1") == 0  # once
    assert reconcile(ledger, user) == 100
    place_hold(ledger, user, "job-2", PLAN, None, 20)
    ledger.release(user, "job-2")  # deleted before it ran
    assert reconcile(ledger, user) == 100


def test_zero_balance_is_payment_required(db):
    ledger = Ledger(db, free_credits=0)
    user = new_user(db)
    with pytest.raises(errors.PaymentRequired) as failure:
        place_hold(ledger, user, "sync-1", PLAN, None, 50)
    assert failure.value.status == 402 and "fixed fee of 1 credits" in failure.value.message


def test_200_concurrent_holds_never_overdraw(db):
    ledger = Ledger(db, free_credits=150)  # covers 150 holds of 1 credit
    user = new_user(db)
    ledger.balance(user)
    outcomes: list[str] = []
    lock = threading.Lock()

    def start(index: int) -> None:
        try:
            place_hold(ledger, user, f"job-{index}", PLAN, None, 1.0)
            result = "held"
        except errors.PaymentRequired:
            result = "refused"
        with lock:
            outcomes.append(result)

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(start, range(200)))
    assert outcomes.count("held") == 150 and outcomes.count("refused") == 50
    assert reconcile(ledger, user) == 0
    for index in range(200):  # settle everything twice, charging half of each hold
        ledger.settle(user, f"job-{index}", 0.5)
        ledger.settle(user, f"job-{index}", 0.5)
    assert reconcile(ledger, user) == pytest.approx(75)


def test_a_new_month_tops_up_an_account_this_process_opened_before(db, monkeypatch):
    """Accounts opened once per process and month: the next month's credits still arrive."""
    import datetime as dt

    from backend.accounting import ledger as ledger_module

    ledger = Ledger(db, free_credits=10, monthly_free_credits=5)
    user = new_user(db)
    assert ledger.balance(user) == 15
    this_month = ledger_module.utcnow()
    next_month = this_month.replace(day=1) + dt.timedelta(days=32)
    monkeypatch.setattr(ledger_module, "utcnow", lambda: next_month)
    assert ledger.balance(user) == 20 and ledger.balance(user) == 20
    assert sorted(e.ref for e in ledger.entries(user)) == ["free-credits", f"monthly-{this_month:%Y-%m}",
                                                           f"monthly-{next_month:%Y-%m}"]


def test_a_settlement_writes_a_release_and_a_charge_and_a_repeated_hold_keeps_the_first(db):
    ledger = Ledger(db, free_credits=100)
    user = new_user(db)
    assert ledger.hold_within_balance(user, "sync-1", 1.0, 40) == (40, 100)
    assert ledger.hold_within_balance(user, "sync-1", 1.0, 10) == (40, 60)  # the same ref: its hold stays
    assert ledger.hold_within_balance(user, "sync-2", 61.0, 70) == (None, 60)  # below the least: nothing held
    assert ledger.settle(user, "sync-1", 2.5) == 2.5
    assert [(e.kind, e.amount) for e in ledger.entries(user)] == [("grant", 100), ("hold", -40), ("release", 40),
                                                                   ("charge", -2.5)]
    assert reconcile(ledger, user) == 97.5
