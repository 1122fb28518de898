"""The aggregator's database on SQLite and on a real PostgreSQL (migrated by the backend's migrations)."""

from __future__ import annotations

import pytest

from aggregator.storage.models import FederationCharge, FederationJob, RegisteredBackend
from backend.storage.models import Account, LedgerEntry, User
from backend.storage.schema import open_database_at
from tests.support.postgres import postgres_module_url, postgres_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path):
    if request.param == "sqlite":
        database = open_database_at(f"sqlite:///{tmp_path / 'aggregator.db'}", tmp_path)
    else:
        database = open_database_at(request.getfixturevalue("postgres_module_url"))
    yield database
    with database.session() as session:  # the PostgreSQL database is shared by the module's tests
        for table in (FederationJob, FederationCharge, RegisteredBackend, LedgerEntry, Account, User):
            session.execute(table.__table__.delete())
    database.dispose()
