"""User-defined processes, stored per user as their full JSON process description; those stored with
``"public": true`` are published (readable by anyone at their public URL, listed in the catalogue)."""

from __future__ import annotations

import statistics

from sqlalchemy import select, tuple_

from backend.storage.db import Database
from backend.storage.models import PublicUdpRun, User, UserDefinedProcess


class UdpStore:
    def __init__(self, db: Database):
        self.db = db

    def put(self, user_id: str, process_id: str, spec: dict) -> None:
        with self.db.session() as session:
            row = session.get(UserDefinedProcess, (user_id, process_id))
            public = spec.get("public") is True
            if row is None:
                session.add(UserDefinedProcess(user_id=user_id, process_id=process_id, spec=spec, public=public))
            else:
                row.spec, row.public = spec, public

    def get(self, user_id: str, process_id: str) -> dict | None:
        with self.db.session() as session:
            row = session.get(UserDefinedProcess, (user_id, process_id))
            return dict(row.spec) if row else None

    def list(self, user_id: str) -> list[dict]:
        query = (select(UserDefinedProcess).where(UserDefinedProcess.user_id == user_id)
                 .order_by(UserDefinedProcess.process_id))
        with self.db.session() as session:
            return [dict(row.spec) for row in session.scalars(query)]

    def get_public(self, user_id: str, process_id: str) -> dict | None:
        """A published process (None when it does not exist or is not published)."""
        with self.db.session() as session:
            row = session.get(UserDefinedProcess, (user_id, process_id))
            return dict(row.spec) if row is not None and row.public else None

    def published(self, limit: int, after: tuple[str, str] | None = None) -> list[tuple[str, str, dict]]:
        """Published processes as (owner id, owner name, spec), ordered by (owner id, process id), at most
        ``limit`` of them after the key ``after``."""
        query = (select(UserDefinedProcess, User.name).join(User, User.user_id == UserDefinedProcess.user_id)
                 .where(UserDefinedProcess.public.is_(True))
                 .order_by(UserDefinedProcess.user_id, UserDefinedProcess.process_id).limit(limit))
        if after is not None:
            query = query.where(tuple_(UserDefinedProcess.user_id, UserDefinedProcess.process_id) > tuple_(*after))
        with self.db.session() as session:
            return [(row.user_id, name, dict(row.spec)) for row, name in session.execute(query)]

    def record_run(self, owner_id: str, process_id: str, costs: float) -> None:
        """The credits a run that called this published process cost (its caller's whole run)."""
        with self.db.session() as session:
            session.add(PublicUdpRun(owner_id=owner_id, process_id=process_id, costs=float(costs)))

    def cost_hints(self, keys: list[tuple[str, str]], recent: int = 20) -> dict[tuple[str, str], dict]:
        """Per (owner id, process id): the median credits of its last ``recent`` runs and how many those are."""
        hints = {}
        with self.db.session() as session:
            for owner_id, process_id in keys:
                costs = list(session.scalars(
                    select(PublicUdpRun.costs).where(PublicUdpRun.owner_id == owner_id,
                                                     PublicUdpRun.process_id == process_id)
                    .order_by(PublicUdpRun.created.desc(), PublicUdpRun.run_id.desc()).limit(recent)))
                if costs:
                    hints[(owner_id, process_id)] = {"credits_median": statistics.median(costs), "runs": len(costs)}
        return hints

    def delete(self, user_id: str, process_id: str) -> bool:
        with self.db.session() as session:
            row = session.get(UserDefinedProcess, (user_id, process_id))
            if row is None:
                return False
            session.delete(row)
            return True
