"""SQLAlchemy models. Schema changes go through an Alembic migration in storage/migrations/versions/."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, false)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_provider", "oidc_subject", name="uq_users_oidc_identity"),)

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: uuid.uuid4().hex)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    oidc_provider: Mapped[str | None] = mapped_column(String(64))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RemovedIdentity(Base):
    """An OIDC identity whose account an operator removed: its tokens are refused from then on, instead of
    making a new account for it on the next request (which would undo the removal, with fresh free credits)."""

    __tablename__ = "removed_identities"

    oidc_provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    oidc_subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)  # the removed account's, for `users restore`
    removed: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserDefinedProcess(Base):
    __tablename__ = "user_defined_processes"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    spec: Mapped[dict] = mapped_column(JSON)
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # published ("public": true)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class PublicUdpRun(Base):
    """The credits of one run that called a published UDP (the catalogue's cost hint); append-only."""

    __tablename__ = "public_udp_runs"
    __table_args__ = (Index("ix_public_udp_runs_process", "owner_id", "process_id", "created"),)

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(String(64))
    process_id: Mapped[str] = mapped_column(String(255))
    costs: Mapped[float] = mapped_column(Float)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """A batch job. ``status`` follows the openEO API; lease_* belong to the runner executing it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_queued", "status", "queued_at"), Index("ix_jobs_user", "user_id", "created"))

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: uuid.uuid4().hex)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="created")
    process: Mapped[dict] = mapped_column(JSON)
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    plan: Mapped[str | None] = mapped_column(String(64))
    budget: Mapped[float | None] = mapped_column(Float)
    log_level: Mapped[str] = mapped_column(String(8), default="info")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    progress: Mapped[float | None] = mapped_column(Float)
    usage: Mapped[dict | None] = mapped_column(JSON)
    costs: Mapped[float | None] = mapped_column(Float)
    results: Mapped[dict | None] = mapped_column(JSON)  # published assets: name -> STAC asset (no href)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    billing_ref: Mapped[str | None] = mapped_column(String(128))  # ledger ref of the current start's hold
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobLogEntry(Base):
    __tablename__ = "job_logs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    level: Mapped[str] = mapped_column(String(8))
    code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict | list | None] = mapped_column(JSON)
    path: Mapped[list | None] = mapped_column(JSON)


class Account(Base):
    """A user's credit balance in milli-credits: the running sum of their ledger entries."""

    __tablename__ = "accounts"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LedgerEntry(Base):
    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("user_id", "ref", "kind", name="uq_ledger_ref_kind"),
                      Index("ix_ledger_user", "user_id", "entry_id"))

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)  # milli-credits, signed
    ref: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebService(Base):
    """A secondary web service (openEO ``/services``): its id is the unguessable part of its tile URL.
    ``version`` grows with every change, so cached tiles of an older version are never served."""

    __tablename__ = "web_services"
    __table_args__ = (Index("ix_web_services_user", "user_id", "created"),)

    service_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    process: Mapped[dict] = mapped_column(JSON)
    configuration: Mapped[dict] = mapped_column(JSON, default=dict)
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    plan: Mapped[str | None] = mapped_column(String(64))
    budget: Mapped[float | None] = mapped_column(Float)
    costs: Mapped[float] = mapped_column(Float, default=0.0)  # credits its rendered tiles cost so far
    version: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ServiceLogEntry(Base):
    """A web service's log entry (tiles that failed to render), as JobLogEntry is a job's."""

    __tablename__ = "service_logs"

    service_id: Mapped[str] = mapped_column(ForeignKey("web_services.service_id", ondelete="CASCADE"),
                                            primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    level: Mapped[str] = mapped_column(String(8))
    code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict | list | None] = mapped_column(JSON)
    path: Mapped[list | None] = mapped_column(JSON)
