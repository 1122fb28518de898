"""User-defined processes, stored per user as their full JSON process description."""

from __future__ import annotations

from sqlalchemy import select

from backend.storage.db import Database
from backend.storage.models import UserDefinedProcess


class UdpStore:
    def __init__(self, db: Database):
        self.db = db

    def put(self, user_id: str, process_id: str, spec: dict) -> None:
        with self.db.session() as session:
            row = session.get(UserDefinedProcess, (user_id, process_id))
            if row is None:
                session.add(UserDefinedProcess(user_id=user_id, process_id=process_id, spec=spec))
            else:
                row.spec = spec

    def get(self, user_id: str, process_id: str) -> dict | None:
        with self.db.session() as session:
            row = session.get(UserDefinedProcess, (user_id, process_id))
            return dict(row.spec) if row else None

    def list(self, user_id: str) -> list[dict]:
        query = (select(UserDefinedProcess).where(UserDefinedProcess.user_id == user_id)
                 .order_by(UserDefinedProcess.process_id))
        with self.db.session() as session:
            return [dict(row.spec) for row in session.scalars(query)]

    def delete(self, user_id: str, process_id: str) -> bool:
        with self.db.session() as session:
            row = session.get(UserDefinedProcess, (user_id, process_id))
            if row is None:
                return False
            session.delete(row)
            return True
