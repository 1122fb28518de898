"""``BackendStore`` (aggregator/federation/backends.py) on the aggregator's database: backends partners
registered at runtime survive restarts and are seen by every worker process that starts later."""

from __future__ import annotations

from sqlalchemy import select

from aggregator.federation.backends import BackendConfig
from aggregator.storage.models import RegisteredBackend
from backend.storage.db import Database


class DbBackendStore:
    def __init__(self, db: Database):
        self.db = db

    def load(self) -> list[BackendConfig]:
        with self.db.session() as session:
            rows = list(session.scalars(select(RegisteredBackend).order_by(RegisteredBackend.registered,
                                                                          RegisteredBackend.backend_id)))
        return [BackendConfig.model_validate(row.config) for row in rows]

    def save(self, backend: BackendConfig) -> None:
        """Insert or replace the registration of ``backend.id``."""
        with self.db.session() as session:
            row = session.get(RegisteredBackend, backend.id)
            if row is None:
                session.add(RegisteredBackend(backend_id=backend.id, config=backend.model_dump(mode="json")))
            else:
                row.config = backend.model_dump(mode="json")

    def delete(self, backend_id: str) -> None:
        with self.db.session() as session:
            row = session.get(RegisteredBackend, backend_id)
            if row is not None:
                session.delete(row)
