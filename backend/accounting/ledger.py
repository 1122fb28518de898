"""The credit ledger: append-only entries (grant, hold, charge, release, refund); a balance is their sum.

Amounts are integers in milli-credits (exact sums, no float drift); the API shows credits.
Each account row keeps the running sum beside the entries, and every change of it is ONE conditional
``UPDATE accounts SET balance = balance + :delta WHERE user_id = :u AND balance + :delta >= 0`` in the
same transaction as its entry. Concurrent holds therefore serialise on the account row (PostgreSQL row
lock, SQLite's single writer) and can never drive a balance below zero, without explicit locks.
Entries that belong to a job or request carry its ``ref``; (user, ref, kind) is unique, so a charge, release
or refund for the same job is recorded at most once however often a completion is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from apicore import errors
from backend.storage.db import Database
from backend.storage.models import Account, LedgerEntry, utcnow

MILLI = 1000
KINDS = ("grant", "hold", "charge", "release", "refund")


def to_milli(credits: float) -> int:
    return int(round(credits * MILLI))


def to_credits(milli: int) -> float:
    return milli / MILLI


@dataclass(frozen=True)
class Entry:
    entry_id: int
    user_id: str
    kind: str
    amount: float  # credits, signed: grants/releases/refunds positive, holds/charges negative
    ref: str | None
    note: str | None
    created: datetime


class Ledger:
    def __init__(self, db: Database, free_credits: float = 0, monthly_free_credits: float = 0):
        self.db = db
        self.free_credits = free_credits
        self.monthly_free_credits = monthly_free_credits
        # user id -> month its account was last opened for by this process: requests skip those statements
        # (user ids are never reused; an account goes only with its user, who can then no longer log in)
        self._opened: dict[str, str] = {}

    # --- accounts ------------------------------------------------------------------------------------

    def open_account(self, user_id: str) -> None:
        """Create the account on first sight with the free credits (granted exactly once), and grant the
        monthly free credits once per calendar month."""
        month = f"{utcnow():%Y-%m}"
        if self._opened.get(user_id) == month:
            return
        with self.db.session() as session:
            known = session.get(Account, user_id) is not None
        if not known:
            self._once(user_id, self.free_credits, "free-credits", "free credits for new users", create=True)
        if self.monthly_free_credits > 0:
            self._once(user_id, self.monthly_free_credits, f"monthly-{month}", "monthly free credits")
        self._opened[user_id] = month

    def _once(self, user_id: str, credits: float, ref: str, note: str, create: bool = False) -> None:
        try:
            with self.db.session() as session:
                if create:
                    session.add(Account(user_id=user_id, balance=0))
                    session.flush()
                if credits > 0:
                    self._post(session, user_id, "grant", to_milli(credits), ref, note)
        except IntegrityError:
            pass  # done already (also when two first requests race)

    def balance(self, user_id: str) -> float:
        self.open_account(user_id)
        with self.db.session() as session:
            return to_credits(session.scalar(select(Account.balance).where(Account.user_id == user_id)) or 0)

    def entries(self, user_id: str | None = None, since: datetime | None = None) -> Iterator[Entry]:
        query = select(LedgerEntry).order_by(LedgerEntry.entry_id)
        if user_id is not None:
            query = query.where(LedgerEntry.user_id == user_id)
        if since is not None:
            query = query.where(LedgerEntry.created >= since)
        with self.db.session() as session:
            rows = list(session.scalars(query))
        for row in rows:
            yield Entry(row.entry_id, row.user_id, row.kind, to_credits(row.amount), row.ref, row.note, row.created)

    def sum_of_entries(self, user_id: str) -> float:
        with self.db.session() as session:
            total = session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                                   .where(LedgerEntry.user_id == user_id))
        return to_credits(int(total))

    # --- movements -----------------------------------------------------------------------------------

    def grant(self, user_id: str, credits: float, note: str | None = None, ref: str | None = None) -> float:
        """Add credits (negative: correct a balance, never below zero). Returns the new balance."""
        self.open_account(user_id)
        amount = to_milli(credits)
        with self.db.session() as session:
            if amount < 0:
                current = session.scalar(select(Account.balance).where(Account.user_id == user_id)) or 0
                amount = max(amount, -current)
            if not self._post(session, user_id, "grant", amount, ref, note):
                raise errors.BadRequest(reason="the correction would make the balance negative")
        return self.balance(user_id)

    def hold(self, user_id: str, ref: str, credits: float, note: str | None = None) -> bool:
        """Reserve credits for a job or request; False (nothing held) when the balance cannot cover them."""
        self.open_account(user_id)
        try:
            with self.db.session() as session:
                return self._post(session, user_id, "hold", -to_milli(credits), ref, note)
        except IntegrityError:
            return True  # this ref holds credits already

    def hold_within_balance(self, user_id: str, ref: str, least: float, most: float,
                            note: str | None = None) -> tuple[float | None, float]:
        """Hold min(most, balance) credits but at least ``least``, in one transaction: (credits held, the
        balance before). Held is None when the balance is below ``least`` (nothing held); a ref that holds
        credits already keeps its hold."""
        self.open_account(user_id)
        try:
            with self.db.session() as session:
                balance = session.scalar(select(Account.balance).where(Account.user_id == user_id)) or 0
                amount = max(to_milli(least), min(to_milli(most), balance) if math.isfinite(most) else balance)
                if balance < to_milli(least) or not self._post(session, user_id, "hold", -amount, ref, note):
                    return None, to_credits(balance)
                return to_credits(amount), to_credits(balance)
        except IntegrityError:
            return self.held(ref), self.balance(user_id)

    def settle(self, user_id: str, ref: str, charge: float, note: str | None = None) -> float:
        """Release the ref's hold and charge ``charge`` credits, capped by the hold. Idempotent. Returns
        the credits charged."""
        try:
            with self.db.session() as session:
                held = -(session.scalar(select(LedgerEntry.amount).where(
                    LedgerEntry.user_id == user_id, LedgerEntry.ref == ref, LedgerEntry.kind == "hold")) or 0)
                amount = min(to_milli(charge), held)
                # release and charge in one balance update (never negative: the charge is within the hold)
                self._post(session, user_id, ("release", "charge"), (held, -amount), ref, note)
        except IntegrityError:
            return self.charged(ref)  # settled before: a repeated completion message changes nothing
        return to_credits(amount)

    def release(self, user_id: str, ref: str, note: str | None = None) -> None:
        """Give a hold back in full (job deleted or stopped before it ran, failure caused by us)."""
        self.settle(user_id, ref, 0, note)

    def refund(self, user_id: str, ref: str, note: str | None = None) -> float:
        """Give back what a ref was charged (a failure the backend caused). Idempotent."""
        charged = self.charged(ref)
        if charged <= 0:
            return 0.0
        try:
            with self.db.session() as session:
                self._post(session, user_id, "refund", to_milli(charged), ref, note)
        except IntegrityError:
            return 0.0
        return charged

    def charged(self, ref: str) -> float:
        with self.db.session() as session:
            amount = session.scalar(select(LedgerEntry.amount).where(LedgerEntry.ref == ref,
                                                                    LedgerEntry.kind == "charge"))
        return to_credits(-(amount or 0))

    def held(self, ref: str) -> float:
        """Credits still held for a ref (0 once settled)."""
        with self.db.session() as session:
            rows = dict(session.execute(select(LedgerEntry.kind, LedgerEntry.amount).where(LedgerEntry.ref == ref)).all())
        return to_credits(-rows.get("hold", 0) - rows.get("release", 0)) if "hold" in rows else 0.0

    @staticmethod
    def _post(session, user_id: str, kind: str | tuple[str, ...], amount: int | tuple[int, ...], ref: str | None,
              note: str | None) -> bool:
        """Apply one entry (or several: kinds and amounts in tuples); False (nothing written) when they would
        make the balance negative."""
        kinds, amounts = (kind, amount) if isinstance(kind, tuple) else ((kind,), (amount,))
        now = utcnow()
        changed = session.execute(
            update(Account).where(Account.user_id == user_id, Account.balance + sum(amounts) >= 0)
            .values(balance=Account.balance + sum(amounts), updated=now)).rowcount
        if changed != 1:
            return False
        session.execute(insert(LedgerEntry), [dict(user_id=user_id, kind=k, amount=a, ref=ref, note=note, created=now)
                                              for k, a in zip(kinds, amounts)])
        return True
