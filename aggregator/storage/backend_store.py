"""``BackendStore`` (aggregator/federation/backends.py) on the aggregator's database: backends partners
registered at runtime survive restarts and are seen by every worker process (``RegistrySync`` polls
``state()``).

A removed registration stays as a departure (its row keeps the config, marked with the removal time), so
the jobs it owned answer "backend X (title) left the federation on DATE" instead of an unknown-id error.
Registering the same id again replaces the departure. The mark lives in the JSON column rather than a
column of its own to keep the migration chain untouched.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from aggregator.federation.backends import BackendConfig, Departure
from aggregator.storage.models import RegisteredBackend
from backend.storage.db import Database
from backend.storage.models import utcnow

DEPARTED = "_departed_at"  # key in RegisteredBackend.config: ISO time of the removal


class DbBackendStore:
    def __init__(self, db: Database):
        self.db = db

    def state(self) -> tuple[list[BackendConfig], list[Departure]]:
        """Active registrations (registration order) and departures, in one read."""
        with self.db.session() as session:
            rows = list(session.scalars(select(RegisteredBackend).order_by(RegisteredBackend.registered,
                                                                          RegisteredBackend.backend_id)))
            raw = [(row.backend_id, dict(row.config)) for row in rows]
        active, departed = [], []
        for backend_id, config in raw:
            removed = config.pop(DEPARTED, None)
            if removed is None:
                active.append(BackendConfig.model_validate(config))
            else:
                departed.append(Departure(backend_id, config.get("title") or backend_id, config.get("url", ""),
                                          _parse_time(removed)))
        return active, departed

    def load(self) -> list[BackendConfig]:
        return self.state()[0]

    def departures(self) -> list[Departure]:
        return self.state()[1]

    def save(self, backend: BackendConfig) -> None:
        """Insert or replace the registration of ``backend.id`` (also a departure of that id)."""
        with self.db.session() as session:
            row = session.get(RegisteredBackend, backend.id)
            if row is None:
                session.add(RegisteredBackend(backend_id=backend.id, config=backend.model_dump(mode="json")))
            else:
                row.config = backend.model_dump(mode="json")
                row.registered = utcnow()

    def delete(self, backend_id: str) -> None:
        """Mark the registration departed (kept for the error its jobs answer)."""
        with self.db.session() as session:
            row = session.get(RegisteredBackend, backend_id)
            if row is not None and DEPARTED not in row.config:
                row.config = {**row.config, DEPARTED: utcnow().isoformat()}


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
