"""Batch jobs in the database: what users do through the API, and the runner's lease protocol.

Status changes follow the openEO API (schemas/status): POST /jobs → created; start → queued (from
created, canceled, finished or error; previous results are discarded); a runner claims a queued job →
running; → finished | error. Stopping a queued or running job sets it back to ``created`` (the spec's
``canceled`` is for jobs that keep partial results, and results here are published whole or not at all).

A runner owns a running job through a lease (``lease_owner``, ``lease_expires``) that it renews with
every heartbeat. Every runner-side write is conditional on still owning the lease, so a job that a user
stopped, deleted or restarted, or that another runner re-queued after the lease expired, can never be
overwritten by a runner that lost it. Claims are conditional updates too (``WHERE status='queued'``),
which makes them safe with several runners on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select, update

from apicore import errors
from backend.storage.db import Database
from backend.storage.models import Job

STATUSES = ("created", "queued", "running", "canceled", "finished", "error")
ACTIVE = ("queued", "running")
EDITABLE_FIELDS = ("title", "description", "process", "plan", "budget", "log_level")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


@dataclass(frozen=True)
class Claim:
    """What a runner needs to execute a job it claimed."""

    job_id: str
    user_id: str
    process: dict
    attempt: int
    log_level: str
    billing_ref: str | None = None  # the ledger ref of this start's hold
    plan: str | None = None
    budget: float | None = None


class JobStore:
    def __init__(self, db: Database):
        self.db = db

    # --- the API side --------------------------------------------------------------------------------

    def create(self, user_id: str, process: dict, **fields: Any) -> Job:
        job = Job(user_id=user_id, process=process, status="created", attempts=0, cancel_requested=False,
                  deleted=False, **{k: v for k, v in fields.items() if v is not None})
        with self.db.session() as session:
            session.add(job)
        return job

    def get(self, user_id: str, job_id: str) -> Job:
        """The caller's job; another user's job is as unknown as a missing one (no existence oracle)."""
        with self.db.session() as session:
            job = session.get(Job, job_id)
            if job is None or job.user_id != user_id or job.deleted:
                raise errors.JobNotFound(identifier=job_id)
            return job

    def by_id(self, job_id: str) -> Job | None:
        """Any user's job, for a signed results URL (its signature is the authorisation); None once deleted."""
        with self.db.session() as session:
            job = session.get(Job, job_id)
            return None if job is None or job.deleted else job

    def list(self, user_id: str, limit: int | None, offset: int) -> tuple[list[Job], bool]:
        """One page of the user's jobs, newest first, and whether more follow."""
        query = (select(Job).where(Job.user_id == user_id, Job.deleted.is_(False))
                 .order_by(Job.created.desc(), Job.job_id).offset(offset))
        if limit is not None:
            query = query.limit(limit + 1)
        with self.db.session() as session:
            jobs = list(session.scalars(query))
        more = limit is not None and len(jobs) > limit
        return jobs[:limit] if limit is not None else jobs, more

    def update(self, user_id: str, job_id: str, changes: dict[str, Any]) -> None:
        with self.db.session() as session:
            job = self._owned(session, user_id, job_id)
            if job.status in ACTIVE:
                raise errors.JobLocked("The job is queued or running: stop it (DELETE /jobs/{id}/results) "
                                       "before changing it.")
            for name, value in changes.items():
                setattr(job, name, value)
            job.updated = utcnow()

    def start(self, user_id: str, job_id: str, billing_ref: str | None = None) -> bool:
        """Queue the job; False when it is queued or running already (then nothing changes, per spec)."""
        with self.db.session() as session:
            job = self._owned(session, user_id, job_id)
            if job.status in ACTIVE:
                return False
            job.billing_ref = billing_ref
            now = utcnow()
            job.status, job.queued_at, job.updated = "queued", now, now
            job.progress = 0
            job.started_at = job.finished_at = None
            job.results = job.usage = job.costs = None
            job.attempts, job.cancel_requested = 0, False
            job.lease_owner = job.lease_expires = None
            return True

    def stop(self, user_id: str, job_id: str) -> str | None:
        """Stop a queued or running job: back to ``created``. Returns the status it had, None if inactive.

        The runner notices at its next heartbeat (its lease is gone) and cancels the Dask work."""
        with self.db.session() as session:
            job = self._owned(session, user_id, job_id)
            if job.status not in ACTIVE:
                return None
            previous = job.status
            job.status, job.updated, job.progress = "created", utcnow(), None
            job.lease_owner = job.lease_expires = None
            return previous

    def delete(self, user_id: str, job_id: str) -> str:
        """Hide the job at once; its rows and files are purged by ``purge`` (the runner stops it first).
        Returns the status it had."""
        with self.db.session() as session:
            job = self._owned(session, user_id, job_id)
            previous = job.status
            job.deleted, job.updated = True, utcnow()
            if job.status in ACTIVE:
                job.status, job.lease_owner, job.lease_expires = "canceled", None, None
            return previous

    def deleted_jobs(self) -> list[str]:
        with self.db.session() as session:
            return list(session.scalars(select(Job.job_id).where(Job.deleted.is_(True))))

    def purge(self, job_id: str) -> None:
        with self.db.session() as session:
            job = session.get(Job, job_id)
            if job is not None and job.deleted:
                session.delete(job)

    def running_count(self, user_id: str) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(Job)
                                  .where(Job.user_id == user_id, Job.status == "running")) or 0

    def _owned(self, session, user_id: str, job_id: str) -> Job:
        job = session.get(Job, job_id)
        if job is None or job.user_id != user_id or job.deleted:
            raise errors.JobNotFound(identifier=job_id)
        return job

    # --- the runner side -----------------------------------------------------------------------------

    def claim(self, owner: str, lease: float, max_running_per_user: int) -> Claim | None:
        """Claim the oldest queued job of a user below the concurrency limit, or None."""
        now = utcnow()
        running = (select(Job.user_id, func.count().label("n")).where(Job.status == "running")
                   .group_by(Job.user_id).subquery())
        query = (select(Job.job_id).outerjoin(running, running.c.user_id == Job.user_id)
                 .where(Job.status == "queued", Job.deleted.is_(False),
                        func.coalesce(running.c.n, 0) < max_running_per_user)
                 .order_by(Job.queued_at, Job.job_id).limit(8))
        with self.db.session() as session:
            candidates = list(session.scalars(query))
        for job_id in candidates:
            with self.db.session() as session:
                done = session.execute(
                    update(Job).where(Job.job_id == job_id, Job.status == "queued")
                    .values(status="running", lease_owner=owner, lease_expires=now + timedelta(seconds=lease),
                            started_at=now, updated=now, attempts=Job.attempts + 1, progress=0))
                if done.rowcount != 1:
                    continue  # another runner was faster
                job = session.get(Job, job_id)
                return Claim(job.job_id, job.user_id, dict(job.process), job.attempts, job.log_level,
                             job.billing_ref, job.plan, job.budget)
        return None

    def heartbeat(self, owner: str, job_id: str, lease: float, progress: float | None) -> bool:
        """Renew the lease (and record progress, never lower than before); False = the job is no longer ours."""
        now = utcnow()
        values: dict[str, Any] = {"lease_expires": now + timedelta(seconds=lease)}
        with self.db.session() as session:
            owned = Job.job_id == job_id, Job.lease_owner == owner, Job.status == "running"
            if progress is not None:
                session.execute(update(Job).where(*owned, func.coalesce(Job.progress, 0) < progress)
                                .values(progress=progress))
            return session.execute(update(Job).where(*owned).values(**values)).rowcount == 1

    def finish(self, owner: str, job_id: str, results: dict, usage: dict, costs: float | None = None) -> bool:
        """Publish the results (one conditional update: all or nothing); False if the job was lost."""
        return self._end(owner, job_id, status="finished", progress=100, results=results, usage=usage, costs=costs)

    def fail(self, owner: str, job_id: str, usage: dict | None = None, costs: float | None = None) -> bool:
        return self._end(owner, job_id, status="error", usage=usage, costs=costs)

    def record_costs(self, job_id: str, usage: dict, costs: float) -> None:
        """Usage and costs of a run that ended without the runner (stopped, deleted)."""
        with self.db.session() as session:
            session.execute(update(Job).where(Job.job_id == job_id).values(usage=usage, costs=costs))

    def billing_of(self, job_id: str) -> tuple[str, str | None] | None:
        """(user id, billing ref) of a job, also a deleted one."""
        with self.db.session() as session:
            row = session.execute(select(Job.user_id, Job.billing_ref).where(Job.job_id == job_id)).first()
        return (row[0], row[1]) if row else None

    def release(self, owner: str, job_id: str) -> bool:
        """Give a claimed job back to the queue (e.g. the runner shuts down)."""
        return self._end(owner, job_id, status="queued", progress=0, started_at=None,
                         attempts=Job.attempts - 1)

    def _end(self, owner: str, job_id: str, **values: Any) -> bool:
        now = utcnow()
        values.update(updated=now, lease_owner=None, lease_expires=None)
        if values["status"] in ("finished", "error"):
            values["finished_at"] = now
        with self.db.session() as session:
            return session.execute(update(Job).where(Job.job_id == job_id, Job.lease_owner == owner,
                                                     Job.status == "running").values(**values)).rowcount == 1

    def expired_leases(self) -> list[tuple[str, int]]:
        """(job id, attempts) of running jobs whose runner stopped renewing the lease."""
        with self.db.session() as session:
            rows = session.execute(select(Job.job_id, Job.attempts)
                                   .where(Job.status == "running", Job.lease_expires < utcnow()))
            return [(job_id, attempts) for job_id, attempts in rows]

    def recover(self, job_id: str, requeue: bool) -> bool:
        """Take back a job whose lease expired: queue it again, or mark it failed. False if it moved on."""
        now = utcnow()
        values: dict[str, Any] = {"updated": now, "lease_owner": None, "lease_expires": None}
        values.update({"status": "queued", "progress": 0, "started_at": None} if requeue
                      else {"status": "error", "finished_at": now})
        with self.db.session() as session:
            return session.execute(update(Job).where(Job.job_id == job_id, Job.status == "running",
                                                     Job.lease_expires < now).values(**values)).rowcount == 1

    def published(self, job_id: str) -> dict | None:
        """The published results ({run, assets}) of a finished job, for signed downloads."""
        with self.db.session() as session:
            row = session.execute(select(Job.status, Job.deleted, Job.results).where(Job.job_id == job_id)).first()
        if row is None or row[0] != "finished" or row[1] or not row[2]:
            return None
        return row[2]

    def status_of(self, job_id: str) -> tuple[str, bool] | None:
        with self.db.session() as session:
            row = session.execute(select(Job.status, Job.deleted).where(Job.job_id == job_id)).first()
            return (row[0], row[1]) if row else None
