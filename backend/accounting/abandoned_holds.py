"""Holds of requests that never settled: their server process died (killed out of memory, kill -9, power loss)
or the database was unreachable when the request tried to settle.

A synchronous request (``sync-…``) or a map tile (``tile-…``) holds credits, computes, then settles, all in one
web worker. A worker killed in between leaves its hold in place for ever: the user's credits would be lost.
The job runner releases such holds once no request can still be running (:func:`request_hold_lifetime`); the
request failed, so it is not charged. A request that is only slow and settles later finds its hold released
and pays nothing (settlements are idempotent: never charged twice, never a negative balance).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased

from backend.accounting.ledger import Ledger
from backend.storage.models import LedgerEntry, utcnow

log = logging.getLogger(__name__)
REQUEST_REF_PREFIXES = ("sync-", "tile-")  # backend/api_services/processing.py, backend/web_services/render.py


def request_hold_lifetime(settings) -> timedelta:
    """Longer than any request can hold credits: its deadline (checked between Dask tasks, so one long task,
    e.g. a UDF chunk, may overrun it by up to ``udf_timeout``), twice over, plus writing and settling."""
    longest = max(settings.sync_timeout, settings.tile_timeout, settings.udf_timeout)
    return timedelta(seconds=2 * longest + 10)


def release_abandoned_request_holds(ledger: Ledger, lifetime: timedelta) -> list[str]:
    """Release every request hold older than ``lifetime`` that was never settled; returns their refs."""
    settled = aliased(LedgerEntry)
    query = (select(LedgerEntry.user_id, LedgerEntry.ref)
             .where(LedgerEntry.kind == "hold", LedgerEntry.created < utcnow() - lifetime,
                    or_(*(LedgerEntry.ref.startswith(prefix) for prefix in REQUEST_REF_PREFIXES)),
                    ~exists().where(and_(settled.user_id == LedgerEntry.user_id, settled.ref == LedgerEntry.ref,
                                         settled.kind == "release"))))
    with ledger.db.session() as session:
        abandoned = list(session.execute(query))
    for user_id, ref in abandoned:
        ledger.release(user_id, ref, note="the request ended without settling (its server process stopped or "
                                          "the database was unreachable): not charged")
        log.warning("released the abandoned hold %s of user %s", ref, user_id)
    return [ref for _, ref in abandoned]
