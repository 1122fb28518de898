"""Tables only the aggregator writes (created by migrations 0004 to 0006 in backend/storage/migrations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.storage.models import Base, utcnow


class RegisteredBackend(Base):
    """A backend a partner registered at runtime (configured ones live in the settings)."""

    __tablename__ = "federation_backends"

    backend_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    config: Mapped[dict] = mapped_column(JSON)  # BackendConfig.model_dump()
    registered: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FederationCharge(Base):
    """One charge of the federation's ledger, attributed to the backend that reported the costs.

    ``ledger_ref`` is the ledger entries' ref (unique per user, like the ledger's own constraint), so a
    charge and its attribution are written at most once however often the costs are reported.
    Amounts in milli-credits, like the ledger: ``reported`` by the backend, ``charged`` to the user (less
    when the balance could not cover it).
    """

    __tablename__ = "federation_charges"
    __table_args__ = (UniqueConstraint("user_id", "ledger_ref", name="uq_federation_charges_ref"),
                      Index("ix_federation_charges_backend", "backend_id", "created"))

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    backend_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # "result" (POST /result) or "job" (one run of a batch job)
    ref: Mapped[str] = mapped_column(String(255))  # the request id or job run as the caller named it
    ledger_ref: Mapped[str] = mapped_column(String(128))
    reported: Mapped[int] = mapped_column(BigInteger)
    charged: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FederationJob(Base):
    """What the aggregator knows of a batch job on one backend beyond the backend's own document: why it
    was routed there, and which run of it is current (for charging each run's costs exactly once).

    ``job_key`` is the federated id (``j1-...``), or its SHA-256 when longer than the column. ``run``
    counts the starts made through the aggregator, the last at ``run_started``; ``charged_run`` is the run
    whose costs were charged last (the ledger's ref names the run too, so a repeated or concurrent charge
    is still made once).
    Jobs created on a backend directly get a row (run 0, no reason) when first seen.
    """

    __tablename__ = "federation_jobs"
    __table_args__ = (Index("ix_federation_jobs_user", "user_id", "created"),)

    job_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    backend_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    run: Mapped[int] = mapped_column(Integer, default=0)
    run_started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    charged_run: Mapped[int | None] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FederationSplitJob(Base):
    """A split batch job (``s1-<record_id>``): its parts run as jobs on their backends, then the primary job
    reads their results. ``fields`` is the user's job (title, description, process, plan, budget, ...),
    ``split`` the graphs (aggregator/split/graphs.py), ``state`` the current run: the backends' job ids and
    their last seen status. ``version`` makes every change a compare-and-set: two requests advancing the
    same job at once cannot both start its primary job."""

    __tablename__ = "federation_split_jobs"
    __table_args__ = (Index("ix_federation_split_jobs_user", "user_id", "created"),)

    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    fields: Mapped[dict] = mapped_column(JSON)
    split: Mapped[dict] = mapped_column(JSON)
    state: Mapped[dict] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
