"""The aggregator's records of split batch jobs (``federation_split_jobs``; see aggregator/split/jobs.py).

    records = SplitRecords(db)
    records.add(user_id, record_id, fields, split, state)
    record = records.get(user_id, record_id)                  # None: no such job of this user
    records.save(record, fields=..., state=...)               # False: someone else changed it first
    records.of_user(user_id)                                   # newest first
    records.delete(record)

Every change is a compare-and-set on ``version``, so requests in several threads and processes advancing
one job cannot both act on the same state (the loser re-reads and undoes what it started).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, select, update

from aggregator.storage.models import FederationSplitJob
from backend.storage.db import Database


@dataclass(frozen=True)
class SplitRecord:
    record_id: str
    user_id: str
    fields: dict  # the user's job: title, description, process (as sent), plan, budget, job_options, log_level
    split: dict  # SplitGraphs.to_json()
    state: dict  # the current run (aggregator/split/jobs.py)
    version: int
    created: datetime  # UTC


class SplitRecords:
    def __init__(self, db: Database):
        self.db = db

    def add(self, user_id: str, record_id: str, fields: dict, split: dict, state: dict) -> SplitRecord:
        with self.db.session() as session:
            session.add(FederationSplitJob(record_id=record_id, user_id=user_id, fields=fields, split=split,
                                           state=state, version=0))
        record = self.get(user_id, record_id)
        assert record is not None
        return record

    def get(self, user_id: str, record_id: str) -> SplitRecord | None:
        with self.db.session() as session:
            row = session.scalar(select(FederationSplitJob).where(FederationSplitJob.record_id == record_id,
                                                                  FederationSplitJob.user_id == user_id))
            return _record(row) if row is not None else None

    def of_user(self, user_id: str) -> list[SplitRecord]:
        with self.db.session() as session:
            rows = session.scalars(select(FederationSplitJob).where(FederationSplitJob.user_id == user_id)
                                   .order_by(FederationSplitJob.created.desc()))
            return [_record(row) for row in rows]

    def save(self, record: SplitRecord, *, fields: dict | None = None, split: dict | None = None,
             state: dict | None = None) -> bool:
        """Write the changes unless the record changed since ``record`` was read (then False)."""
        values = {name: value for name, value in (("fields", fields), ("split", split), ("state", state))
                  if value is not None}
        with self.db.session() as session:
            result = session.execute(update(FederationSplitJob)
                                     .where(FederationSplitJob.record_id == record.record_id,
                                            FederationSplitJob.user_id == record.user_id,
                                            FederationSplitJob.version == record.version)
                                     .values(version=record.version + 1, **values))
            return result.rowcount == 1

    def delete(self, record: SplitRecord) -> None:
        with self.db.session() as session:
            session.execute(delete(FederationSplitJob).where(FederationSplitJob.record_id == record.record_id,
                                                             FederationSplitJob.user_id == record.user_id))


def _record(row: FederationSplitJob) -> SplitRecord:
    created = row.created if row.created.tzinfo else row.created.replace(tzinfo=timezone.utc)
    return SplitRecord(row.record_id, row.user_id, dict(row.fields), dict(row.split), dict(row.state), row.version,
                       created)
