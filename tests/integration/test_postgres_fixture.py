"""The throw-away PostgreSQL test server (tests/support/postgres.py) really works."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

try:
    from tests.support import postgres as pg
except ImportError:
    # Without tests/__init__.py our `tests` is a namespace package, and the *regular*
    # package `tests` that canaille (via pytest-iam) installs into site-packages wins
    # over it. Load the helper by path instead.
    import importlib.util

    _path = Path(__file__).resolve().parents[1] / "support" / "postgres.py"
    _spec = importlib.util.spec_from_file_location("tests_support_postgres", _path)
    pg = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = pg
    _spec.loader.exec_module(pg)

# What a conftest.py does to offer the fixtures:
postgres_url = pg.postgres_url
postgres_module_url = pg.postgres_module_url

pytestmark = pytest.mark.postgres

HELPER = Path(pg.__file__).resolve()
REPO_ROOT = HELPER.parents[2]


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_size=10, max_overflow=0)


def test_lifecycle_directory_removed_and_server_gone():
    with pg.throwaway_postgres("lifecycle") as url:
        assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
        assert url.endswith("/lifecycle")
        assert url.base_dir.is_dir() and (url.data_dir / "PG_VERSION").is_file()
        pid = int((url.data_dir / "postmaster.pid").read_text().split()[0])
        engine = _engine(url)
        with engine.connect() as conn:
            settings = dict(
                conn.execute(
                    sa.text(
                        "SELECT name, setting FROM pg_settings WHERE name IN "
                        "('listen_addresses', 'fsync', 'port', 'unix_socket_directories', 'server_encoding')"
                    )
                ).all()
            )
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == "lifecycle"
        engine.dispose()
        assert settings == {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",
            "port": str(url.port),
            "unix_socket_directories": str(url.socket_dir),
            "server_encoding": "UTF8",
        }
    assert not url.base_dir.exists()
    assert not _alive(pid)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url.libpq_url, connect_timeout=2)


def test_cleanup_also_on_error():
    with pytest.raises(RuntimeError, match="boom"):
        with pg.throwaway_postgres() as url:
            pid = int((url.data_dir / "postmaster.pid").read_text().split()[0])
            raise RuntimeError("boom")
    assert not url.base_dir.exists()
    assert not _alive(pid)


def test_create_insert_read_back(postgres_url):
    engine = _engine(postgres_url)
    meta = sa.MetaData()
    jobs = sa.Table(
        "jobs_roundtrip",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("process", JSONB, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    created = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    rows = [
        {"id": 1, "title": "NDVI", "process": {"process_graph": {"n": {"process_id": "ndvi"}}}, "created": created},
        {"id": 2, "title": "Ümlaut ✓", "process": {"list": [1, 2.5, None, True]}, "created": created},
    ]
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(jobs.insert(), rows)
        with engine.connect() as conn:
            got = [r._asdict() for r in conn.execute(sa.select(jobs).order_by(jobs.c.id))]
            # JSONB operators really run server-side.
            pid = conn.execute(
                sa.select(jobs.c.process["process_graph"]["n"]["process_id"].astext).where(jobs.c.id == 1)
            ).scalar_one()
        assert got == rows
        assert pid == "ndvi"
        # The same data through plain psycopg.
        with psycopg.connect(postgres_url.libpq_url) as conn:
            assert conn.execute("SELECT title FROM jobs_roundtrip ORDER BY id").fetchall() == [
                ("NDVI",),
                ("Ümlaut ✓",),
            ]
    finally:
        meta.drop_all(engine)
        engine.dispose()


def test_concurrent_connections(postgres_url):
    engine = _engine(postgres_url)
    workers = 8
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE hits (worker int, backend int)"))
    barrier = threading.Barrier(workers)

    def work(i: int) -> int:
        with engine.begin() as conn:
            barrier.wait(timeout=30)  # all 8 connections are open at the same time
            backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            conn.execute(sa.text("SELECT pg_sleep(0.3)"))
            conn.execute(sa.text("INSERT INTO hits VALUES (:w, :b)"), {"w": i, "b": backend})
            return backend

    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            backends = list(pool.map(work, range(workers)))
        elapsed = time.monotonic() - t0
        assert len(set(backends)) == workers  # 8 distinct server processes
        assert elapsed < workers * 0.3 / 2  # they slept in parallel, not one after another
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*), count(DISTINCT backend) FROM hits")).one() == (
                workers,
                workers,
            )

        # Real transaction isolation between two connections.
        with engine.connect() as writer, engine.connect() as reader:
            writer.execute(sa.text("INSERT INTO hits VALUES (99, 0)"))  # not committed yet
            assert reader.execute(sa.text("SELECT count(*) FROM hits WHERE worker = 99")).scalar_one() == 0
            writer.commit()
            assert reader.execute(sa.text("SELECT count(*) FROM hits WHERE worker = 99")).scalar_one() == 1
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS hits"))
        engine.dispose()


def test_create_database_is_fresh_and_separate(postgres_url):
    url = pg.create_database(postgres_url, "extra_db")
    assert url == postgres_url.rsplit("/", 1)[0] + "/extra_db"
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_here (x int)"))
        # Re-creating gives an empty database again, even with a connection still pooled.
        assert pg.create_database(postgres_url, "extra_db") == url
        engine.dispose()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('only_here')")).scalar_one() is None
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == "extra_db"
    finally:
        engine.dispose()
        pg.drop_database(url)
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(pg._libpq_url(url), connect_timeout=2)


def test_module_database_fixture(postgres_module_url, postgres_url):
    assert postgres_module_url != postgres_url
    engine = _engine(postgres_module_url)
    with engine.connect() as conn:
        name = conn.execute(sa.text("SELECT current_database()")).scalar_one()
        tables = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar_one()
    engine.dispose()
    assert name.startswith("test_postgres_fixture_")
    assert tables == 0


def _start_cli() -> tuple[subprocess.Popen, str, Path]:
    """`python tests/support/postgres.py` (same as `python -m tests.support.postgres`)."""
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), "--dbname", "cli"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:"), (url, proc.poll())
    with psycopg.connect(pg._libpq_url(url)) as conn:
        data_dir = Path(conn.execute("SHOW data_directory").fetchone()[0])
    return proc, url, data_dir.parent


def test_cli_prints_url_and_cleans_up_on_sigterm():
    proc, url, base_dir = _start_cli()
    try:
        assert url.endswith("/cli") and base_dir.is_dir()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not base_dir.exists()


def test_watchdog_cleans_up_after_hard_kill():
    proc, url, base_dir = _start_cli()
    proc.kill()  # SIGKILL: no finally blocks run in the helper process
    proc.wait()
    deadline = time.monotonic() + 30
    while base_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not base_dir.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg._libpq_url(url), connect_timeout=2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists" until its parent (here: init) reaps it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
