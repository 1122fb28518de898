"""A migrated database on SQLite and on a real PostgreSQL, for the storage tests."""

from __future__ import annotations

import pytest

from backend.storage.db import Database
from backend.storage.models import Account, Job, LedgerEntry
from tests.support.postgres import postgres_module_url, postgres_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'test.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_module_url"))
    database = Database(url)
    database.upgrade()
    yield database
    with database.session() as session:  # the PostgreSQL database is shared by the module's tests
        for table in (LedgerEntry, Account, Job):
            session.execute(table.__table__.delete())
    database.dispose()
