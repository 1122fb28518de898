"""A process that may not migrate (the runner `serve` starts) refuses an outdated schema with a clear error."""

from __future__ import annotations

import logging

import pytest
from alembic import command

from backend.jobs.process import run_runner
from backend.settings import load_settings
from backend.storage import schema
from backend.storage.db import Database


def database_at(revision: str, settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    config = schema._alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    db.dispose()


def test_outdated_schema_is_refused_with_what_to_do(tmp_path):
    settings = load_settings(data_dir=tmp_path, demo_catalog=False)
    database_at("0002", settings)
    needs = schema.head_revision()
    with pytest.raises(schema.SchemaNotCurrent, match=rf"at revision 0002, this version needs {needs}: start "
                                                      r"`openeo-backend serve` or `openeo-backend worker`"):
        schema.open_database(settings, migrate=False)
    schema.open_database(settings)  # a process that may migrate brings it up to date
    schema.open_database(settings, migrate=False)


def test_runner_that_may_not_migrate_stops_on_an_empty_database(tmp_path, caplog):
    settings = load_settings(data_dir=tmp_path, demo_catalog=False)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stopped:
        run_runner(settings, migrate=False)
    assert stopped.value.code == 3
    assert "job runner not started: the database schema is at revision (none: an empty database)" in caplog.text
