"""The database schema: Alembic migrations run by one process at a time, and the check that it is current.

Who migrates: the commands that start the system — `serve` (once, in gunicorn's arbiter, before any web
worker forks and before it starts its job runner), `worker` and the user/credit commands. Each takes one
lock per database around the upgrade: an exclusive file lock beside a SQLite file, a transaction-scoped
advisory lock on PostgreSQL. The first process brings the schema to the newest revision; the others wait,
find it current and change nothing. The job runner that `serve` starts does not migrate: it only checks
(:func:`ensure_current`) and stops with a clear error if the schema is not the one its code expects.

This module imports nothing of the processing engine: the CLI uses it without loading Dask or xarray.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path
from typing import Iterator, Protocol

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from backend.storage.db import Database

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any fixed 64-bit number, the same in every process of this application (pg_advisory_xact_lock's key).
POSTGRES_LOCK_KEY = 0x6F70656E656F4442  # "openeoDB"


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the revision this code needs, and this process may not migrate it."""


class DatabaseSettings(Protocol):
    """What opening a database needs of the settings: the backend's and the aggregator's both have it."""

    data_dir: Path

    @property
    def resolved_database_url(self) -> str: ...


def open_database(settings: DatabaseSettings, migrate: bool = True) -> Database:
    """The configured database; `migrate`: bring its schema up to date first, else only check it is."""
    return open_database_at(settings.resolved_database_url, settings.data_dir, migrate)


def open_database_at(url: str, data_dir: Path | None = None, migrate: bool = True) -> Database:
    """The database at `url` (`data_dir`, if given, is created first: it holds a default SQLite file)."""
    if data_dir is not None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    db = Database(url)
    if migrate:
        upgrade(db)
    else:
        ensure_current(db)
    return db


def head_revision() -> str:
    """The newest revision of the migrations this code has."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def upgrade(db: Database) -> None:
    """Migrate the schema to the newest revision, holding the database's migration lock (idempotent)."""
    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with _file_lock(db), db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # held until this transaction ends (DDL included)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY})
        before = current_revision(connection)
        if before == head:
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("database schema migrated from %s to %s", before or "empty", head)


def ensure_current(db: Database) -> None:
    """Raise SchemaNotCurrent unless the schema is at the newest revision this code knows."""
    head = head_revision()
    with db.engine.connect() as connection:
        found = current_revision(connection)
    if found != head:
        raise SchemaNotCurrent(
            f"the database schema is at revision {found or '(none: an empty database)'}, this version needs "
            f"{head}: start `openeo-backend serve` or `openeo-backend worker` once against this database to "
            "migrate it (`openeo-aggregator serve` for an aggregator's database), or run the version that "
            "matches it")


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@contextlib.contextmanager
def _file_lock(db: Database) -> Iterator[None]:
    """An exclusive lock file beside a SQLite database file: SQLite has no lock that spans a migration
    (its DDL commits on its own, and switching a fresh file to WAL fails when two connections race)."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    lock_path = Path(url.database).with_name(Path(url.database).name + ".migration-lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed, also if this process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
