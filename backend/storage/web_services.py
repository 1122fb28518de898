"""Secondary web services (/services), stored per user. The id is random (128 bits): it is the part of
the tile URL that makes it unguessable, since map clients fetch tiles without a token."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update

from backend.storage.db import Database
from backend.storage.models import WebService, utcnow

EDITABLE = ("process", "configuration", "title", "description", "enabled", "plan", "budget")


class WebServiceStore:
    def __init__(self, db: Database):
        self.db = db

    def create(self, user_id: str, service_type: str, process: dict, configuration: dict, **fields) -> WebService:
        row = WebService(service_id=secrets.token_hex(16), user_id=user_id, type=service_type, process=process,
                         configuration=configuration, costs=0.0, version=1, **fields)
        with self.db.session() as session:
            session.add(row)
            session.flush()
            session.expunge(row)
        return row

    def get(self, user_id: str, service_id: str) -> WebService | None:
        """The user's service; None for another user's (they must not learn that it exists)."""
        row = self.by_id(service_id)
        return row if row is not None and row.user_id == user_id else None

    def by_id(self, service_id: str) -> WebService | None:
        with self.db.session() as session:
            row = session.get(WebService, service_id)
            if row is not None:
                session.expunge(row)
            return row

    def list(self, user_id: str) -> list[WebService]:
        query = select(WebService).where(WebService.user_id == user_id).order_by(WebService.created)
        with self.db.session() as session:
            rows = list(session.scalars(query))
            for row in rows:
                session.expunge(row)
            return rows

    def update(self, user_id: str, service_id: str, changes: dict) -> WebService | None:
        """Apply ``changes`` (keys of EDITABLE) and bump the version (older cached tiles go stale)."""
        with self.db.session() as session:
            row = session.get(WebService, service_id)
            if row is None or row.user_id != user_id:
                return None
            for key, value in changes.items():
                setattr(row, key, value)
            row.version, row.updated = row.version + 1, utcnow()
            session.flush()
            session.expunge(row)
            return row

    def delete(self, user_id: str, service_id: str) -> bool:
        with self.db.session() as session:
            row = session.get(WebService, service_id)
            if row is None or row.user_id != user_id:
                return False
            session.delete(row)
            return True

    def add_costs(self, service_id: str, costs: float) -> None:
        with self.db.session() as session:
            session.execute(update(WebService).where(WebService.service_id == service_id)
                            .values(costs=WebService.costs + float(costs)))
