"""The aggregator's records of batch jobs on the backends (``federation_jobs``): why a job went where it
is, and which run of it is current, so each run's costs are charged once (see aggregator/services/jobs.py).

    records = JobRecords(db)
    records.add(user_id, federated_id, "A", reason)      # POST /jobs
    records.get(user_id, [federated_id, ...])            # {federated id: JobRecord}
    records.next_run(user_id, federated_id, "A")         # after a start went through: the new run number
    records.mark_charged(user_id, federated_id, "A", run)

Thread- and process-safe: every change is one statement (or an insert that tolerates a concurrent one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from aggregator.storage.models import FederationJob
from backend.storage.db import Database
from backend.storage.models import utcnow

MAX_KEY = 255


@dataclass(frozen=True)
class JobRecord:
    backend_id: str
    reason: str | None
    run: int
    run_started: datetime | None  # UTC
    charged_run: int | None

    def started_since(self, moment: datetime) -> bool:
        """Whether the current run began at or after ``moment`` (a document read before may show the
        previous run)."""
        if self.run_started is None:
            return False
        started = self.run_started if self.run_started.tzinfo else self.run_started.replace(tzinfo=timezone.utc)
        return started >= moment


def job_key(federated_id: str) -> str:
    """The row key of a federated id (hashed when longer than the column)."""
    if len(federated_id) <= MAX_KEY:
        return federated_id
    return "sha256:" + hashlib.sha256(federated_id.encode("utf-8")).hexdigest()


class JobRecords:
    def __init__(self, db: Database):
        self.db = db

    def add(self, user_id: str, federated_id: str, backend_id: str, reason: str | None) -> None:
        """Record a job created through the aggregator (a row seen before keeps its run, gets the reason)."""
        key = job_key(federated_id)
        if not self._insert(user_id, key, backend_id, reason):
            with self.db.session() as session:
                session.execute(update(FederationJob).where(FederationJob.job_key == key,
                                                            FederationJob.user_id == user_id).values(reason=reason))

    def get(self, user_id: str, federated_ids: Iterable[str]) -> dict[str, JobRecord]:
        """The records of those of ``federated_ids`` that have one (jobs created on a backend directly
        have none until they are started or charged through the aggregator)."""
        by_key = {job_key(fid): fid for fid in federated_ids}
        if not by_key:
            return {}
        with self.db.session() as session:
            rows = session.scalars(select(FederationJob).where(FederationJob.user_id == user_id,
                                                               FederationJob.job_key.in_(list(by_key))))
            return {by_key[row.job_key]: JobRecord(row.backend_id, row.reason, row.run, row.run_started, row.charged_run)
                    for row in rows}

    def next_run(self, user_id: str, federated_id: str, backend_id: str) -> int:
        """Count one more run of the job (a start the backend accepted); returns the new run number."""
        key = job_key(federated_id)
        self._insert(user_id, key, backend_id, None)
        with self.db.session() as session:
            session.execute(update(FederationJob).where(FederationJob.job_key == key, FederationJob.user_id == user_id)
                            .values(run=FederationJob.run + 1, run_started=utcnow()))
            return session.scalar(select(FederationJob.run).where(FederationJob.job_key == key)) or 0

    def mark_charged(self, user_id: str, federated_id: str, backend_id: str, run: int) -> None:
        """Note that the costs of ``run`` are charged (an optimisation: the ledger's ref makes a charge
        once in any case)."""
        key = job_key(federated_id)
        self._insert(user_id, key, backend_id, None)
        with self.db.session() as session:
            session.execute(update(FederationJob).where(FederationJob.job_key == key, FederationJob.user_id == user_id)
                            .values(charged_run=run))

    def _insert(self, user_id: str, key: str, backend_id: str, reason: str | None) -> bool:
        """False when the row exists already (also when a concurrent request inserted it first)."""
        try:
            with self.db.session() as session:
                session.add(FederationJob(job_key=key, user_id=user_id, backend_id=backend_id, reason=reason, run=0))
            return True
        except IntegrityError:
            return False
