"""Holds of requests whose web worker died before settling are released (issue 13, fault injection: an
out-of-memory kill of a web worker lost the 50 credits its POST /result held, for ever)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from backend.accounting.abandoned_holds import release_abandoned_request_holds, request_hold_lifetime
from backend.accounting.ledger import Ledger
from backend.settings import load_settings
from backend.storage.models import LedgerEntry, utcnow
from tests.integration.test_ledger import new_user, reconcile

LIFETIME = timedelta(minutes=10)


def age(db, ref: str, by: timedelta) -> None:
    with db.session() as session:
        session.execute(update(LedgerEntry).where(LedgerEntry.ref == ref).values(created=utcnow() - by))


def test_old_unsettled_request_holds_are_released_and_nothing_else(db):
    ledger = Ledger(db, free_credits=1000)
    user = new_user(db)
    for ref in ("sync-dead", "tile-dead", "sync-settled", "sync-young", "job-x-1"):
        assert ledger.hold(user, ref, 50)
    ledger.settle(user, "sync-settled", 2)
    for ref in ("sync-dead", "tile-dead", "sync-settled", "job-x-1"):
        age(db, ref, LIFETIME + timedelta(seconds=1))

    assert sorted(release_abandoned_request_holds(ledger, LIFETIME)) == ["sync-dead", "tile-dead"]
    assert ledger.held("sync-dead") == ledger.held("tile-dead") == 0
    assert ledger.charged("sync-dead") == 0
    assert ledger.held("sync-young") == 50  # may still be running
    assert ledger.held("job-x-1") == 50  # jobs are settled by their runner (or recovered with their lease)
    assert ledger.charged("sync-settled") == 2
    assert reconcile(ledger, user) == 1000 - 2 - 50 - 50
    assert release_abandoned_request_holds(ledger, LIFETIME) == []  # once

    # the request was only slow: its late settlement finds the hold released and charges nothing
    assert ledger.settle(user, "sync-dead", 3) == 0
    assert reconcile(ledger, user) == 1000 - 2 - 50 - 50


def test_the_lifetime_outlasts_every_request_deadline():
    settings = load_settings(sync_timeout=300, tile_timeout=30, udf_timeout=120)
    assert request_hold_lifetime(settings) == timedelta(seconds=610)
    assert request_hold_lifetime(load_settings(sync_timeout=5, tile_timeout=5, udf_timeout=8)) == timedelta(seconds=26)

