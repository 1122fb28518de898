"""Per-job and per-service log entries (openEO log_entry: id, code, level, message, time, data, path).

Ids are the entry's sequence number as a string, so ``offset`` (the id of the last entry a client has
seen) pages forward with a plain ``seq > offset``. Entries below the job's ``log_level`` are not stored;
reads filter by a minimum level too (spec: error > warning > info > debug). A service keeps its last
``keep`` entries (a map view can fail hundreds of tiles).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from apicore import errors
from apicore.log_levels import LEVELS, level_rank
from backend.storage.db import Database
from backend.storage.models import JobLogEntry, ServiceLogEntry


class LogStore:
    model: Any = JobLogEntry
    owner = "job_id"  # the model's column naming whose entries they are
    keep: int | None = None  # entries kept per owner (None: all)

    def __init__(self, db: Database):
        self.db = db

    def _of(self, owner_id: str):
        return getattr(self.model, self.owner) == owner_id

    def append(self, owner_id: str, level: str, message: str, *, min_level: str = "debug", code: str | None = None,
               data: Any = None, path: list | None = None) -> None:
        if level_rank(level) < level_rank(min_level):
            return
        model = self.model
        for _ in range(5):  # two writers may pick the same next seq (PostgreSQL): retry with a fresh one
            try:
                with self.db.session() as session:
                    seq = (session.scalar(select(func.max(model.seq)).where(self._of(owner_id))) or 0) + 1
                    session.add(model(**{self.owner: owner_id}, seq=seq, level=level, message=message, code=code,
                                      data=data, path=path))
                    if self.keep is not None and seq > self.keep:
                        session.execute(delete(model).where(self._of(owner_id), model.seq <= seq - self.keep))
                return
            except IntegrityError:
                continue

    def read(self, owner_id: str, offset: str | int | None, min_level: str, limit: int | None) -> tuple[list[dict], bool]:
        """Entries after ``offset`` at or above ``min_level`` (one page), and whether more follow."""
        try:
            after = int(offset) if offset else 0
        except ValueError:
            raise errors.BadRequest(reason=f"'offset' must be the id of a log entry, not {offset!r}") from None
        wanted = LEVELS[level_rank(min_level):]
        model = self.model
        query = (select(model).where(self._of(owner_id), model.seq > after, model.level.in_(wanted))
                 .order_by(model.seq))
        if limit is not None:
            query = query.limit(limit + 1)
        with self.db.session() as session:
            rows = list(session.scalars(query))
        more = limit is not None and len(rows) > limit
        return [_as_dict(row) for row in (rows[:limit] if limit is not None else rows)], more

    def last_error(self, owner_id: str) -> dict | None:
        model = self.model
        query = select(model).where(self._of(owner_id), model.level == "error").order_by(model.seq.desc()).limit(1)
        with self.db.session() as session:
            row = session.scalar(query)
            return _as_dict(row) if row is not None else None


class JobLogs(LogStore):
    pass


class ServiceLogs(LogStore):
    model = ServiceLogEntry
    owner = "service_id"
    keep = 1000


def _as_dict(row: JobLogEntry | ServiceLogEntry) -> dict:
    entry: dict[str, Any] = {"id": str(row.seq), "level": row.level, "message": row.message,
                             "time": row.time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if row.code:
        entry["code"] = row.code
    if row.data is not None:
        entry["data"] = row.data
    if row.path is not None:
        entry["path"] = row.path
    return entry
