"""Several processes starting at once against one fresh database: the schema is migrated exactly once.

Each process is a real interpreter opening the database the way `serve`, `worker` and the CLI do; all
of them wait for one signal so their migrations overlap. Alembic logs every migration step it runs
("Running upgrade  -> 0001, ..."): across all processes the first step must appear once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy

from tests.support.postgres import create_database, drop_database, postgres_url, unique_database_name  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4
SCRIPT = r"""
import logging, os, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(process)d %(name)s: %(message)s")
from backend.settings import load_settings
from backend.storage.schema import open_database
data_dir, url, rendezvous = sys.argv[1:4]
settings = load_settings(data_dir=data_dir, database_url=url or None)
Path(rendezvous, f"ready-{os.getpid()}").touch()
while not Path(rendezvous, "go").exists():
    time.sleep(0.001)
open_database(settings)
print("OPENED", flush=True)
"""


def start_at_once(data_dir: Path, url: str, rendezvous: Path) -> list[subprocess.CompletedProcess]:
    rendezvous.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(data_dir), url, str(rendezvous)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(PROCESSES)]
    try:
        deadline = time.monotonic() + 120
        while len(list(rendezvous.glob("ready-*"))) < PROCESSES:
            assert time.monotonic() < deadline, "the processes did not start"
            assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs if p.poll() is not None]
            time.sleep(0.05)
        (rendezvous / "go").touch()
        return [subprocess.CompletedProcess(p.args, p.wait(120), p.communicate()[0], "") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def assert_migrated_once(results: list[subprocess.CompletedProcess], url: str) -> None:
    outputs = "\n".join(r.stdout for r in results)
    assert all(r.returncode == 0 and "OPENED" in r.stdout for r in results), outputs
    assert "Traceback" not in outputs, outputs
    assert outputs.count("Running upgrade  -> 0001") == 1, outputs
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalars().all()
            tables = set(sqlalchemy.inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert len(versions) == 1 and {"users", "jobs", "ledger"} <= tables, (versions, tables)


def test_concurrent_start_on_fresh_sqlite(tmp_path):
    data_dir = tmp_path / "data"
    results = start_at_once(data_dir, "", tmp_path / "rendezvous")
    assert_migrated_once(results, f"sqlite:///{data_dir / 'backend.db'}")


@pytest.mark.postgres
def test_concurrent_start_on_fresh_postgres(tmp_path, postgres_url):  # noqa: F811
    url = create_database(postgres_url, unique_database_name("migration_race"))
    try:
        results = start_at_once(tmp_path / "data", url, tmp_path / "rendezvous")
        assert_migrated_once(results, url)
    finally:
        drop_database(url)
