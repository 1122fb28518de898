"""The per-backend usage report for partners: what their backend did for which federation user, and what
the federation charged for it. Read from ``federation_charges`` (structured, not parsed from notes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select

from aggregator.storage.models import FederationCharge
from backend.accounting.ledger import to_credits
from backend.accounting.report import render_rows
from backend.storage.db import Database
from backend.storage.models import User

COLUMNS = ("backend", "user", "user_id", "requests", "jobs", "reported", "credits", "first", "last")


def usage_report(db: Database, *, since: datetime | None = None, until: datetime | None = None,
                 backend_id: str | None = None, user_id: str | None = None) -> list[dict]:
    """One row per (backend, user): ``requests`` (synchronous), ``jobs`` (job runs), ``reported`` (credits
    the backend reported) and ``credits`` (charged to the user), first and last charge (UTC)."""
    charge = FederationCharge
    query = (select(charge.backend_id, charge.user_id, func.max(User.name),
                    func.sum(case((charge.kind == "result", 1), else_=0)),
                    func.sum(case((charge.kind == "job", 1), else_=0)),
                    func.sum(charge.reported), func.sum(charge.charged),
                    func.min(charge.created), func.max(charge.created))
             .join(User, User.user_id == charge.user_id)
             .group_by(charge.backend_id, charge.user_id))
    if since is not None:
        query = query.where(charge.created >= since)
    if until is not None:
        query = query.where(charge.created < until)
    if backend_id is not None:
        query = query.where(charge.backend_id == backend_id)
    if user_id is not None:
        query = query.where(charge.user_id == user_id)
    with db.session() as session:
        rows = session.execute(query).all()
    report = [{"backend": backend, "user": name, "user_id": uid, "requests": int(requests), "jobs": int(jobs),
               "reported": to_credits(int(reported)), "credits": to_credits(int(charged)),
               "first": _timestamp(first), "last": _timestamp(last)}
              for backend, uid, name, requests, jobs, reported, charged, first, last in rows]
    return sorted(report, key=lambda row: (row["backend"], row["user"]))


def _timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")  # stored as UTC (SQLite returns it without a zone)


def render_usage_report(rows: list[dict], fmt: str = "csv") -> str:
    """CSV (default) or JSON, for the CLI and the admin API."""
    return render_rows(rows, COLUMNS, fmt)
