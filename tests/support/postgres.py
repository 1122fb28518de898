"""Throw-away PostgreSQL clusters for tests.

    from tests.support.postgres import throwaway_postgres

    with throwaway_postgres() as url:      # "postgresql+psycopg://postgres@127.0.0.1:PORT/test"
        engine = sqlalchemy.create_engine(url)

Each call runs ``initdb`` into a fresh temporary directory, starts the server with
``pg_ctl`` on 127.0.0.1 and a free port (unix socket inside the temporary directory,
so it never touches /var/run/postgresql), trusts every local connection, turns off
durability (fsync etc.; data is disposable), creates one database and yields its
SQLAlchemy URL. On exit -- also on error -- the server is stopped and the directory
deleted. If the test process dies without running its cleanup (SIGKILL, os._exit from
pytest-timeout's thread method, ...), a small watchdog process does it instead.

PostgreSQL refuses to run as root, so as root initdb/pg_ctl run as the ``postgres``
OS user (created by Debian's package) via ``runuser``; the directory belongs to it.

The server binaries are looked for in $PG_BINDIR, /usr/lib/postgresql/<major>/bin
(newest first) and on PATH; if none is found, scripts/ensure-postgres.sh installs
Debian's ``postgresql`` package first.

pytest:
    # conftest.py
    from tests.support.postgres import postgres_url, postgres_module_url  # noqa: F401

    ``postgres_url``        session scope: one cluster per test session (per xdist worker)
    ``postgres_module_url`` module scope: a fresh database in that cluster per test module

    ``create_database(url, name) -> url`` / ``drop_database(url)`` for anything else.

    OPENEO_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@host/db  use that server
        instead of starting one (its database must exist; create_database works if the
        user may CREATE DATABASE).
    OPENEO_TEST_POSTGRES_SKIP_UNAVAILABLE=1  skip (instead of error) the tests that
        need PostgreSQL when it cannot be installed/started (e.g. a laptop without root).

By hand:
    python -m tests.support.postgres [--dbname NAME]
prints the URL (stdout, one line), then waits until Ctrl-C / SIGTERM and cleans up.

This module is the public face (fixtures, command line); the parts live in
``tests/support/pg/``: ``cluster`` (initdb, start, stop), ``cleanup`` (watchdog),
``binaries`` (find/install), ``commands`` (run as the postgres user), ``databases``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

if not __package__:  # run or loaded by file path: `tests` must be this checkout's, not Canaille's
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [str(_HERE.parents[1]), *(p for p in sys.path if Path(p).resolve() != _HERE)]

from tests.support.pg.binaries import ensure_postgres_bindir, find_postgres_bindir  # noqa: E402
from tests.support.pg.cluster import PostgresURL, throwaway_postgres  # noqa: E402
from tests.support.pg.commands import PostgresUnavailable  # noqa: E402
from tests.support.pg.databases import (  # noqa: E402
    create_database,
    drop_database,
    libpq_url as _libpq_url,  # noqa: F401  (used by tests/integration/test_postgres_fixture.py)
    unique_database_name,
)

try:  # the module is also usable without pytest (python -m tests.support.postgres)
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

__all__ = [
    "PostgresURL",
    "PostgresUnavailable",
    "throwaway_postgres",
    "create_database",
    "drop_database",
    "unique_database_name",
    "find_postgres_bindir",
    "ensure_postgres_bindir",
    "postgres_url",
    "postgres_module_url",
]


# --------------------------------------------------------------------------- pytest

if pytest is not None:

    @pytest.fixture(scope="session")
    def postgres_url() -> Iterator[str]:
        """SQLAlchemy URL of a throw-away PostgreSQL database, one cluster per session.

        Set OPENEO_TEST_POSTGRES_URL to use an existing server instead.
        """
        external = os.environ.get("OPENEO_TEST_POSTGRES_URL")
        if external:
            yield external
            return
        with contextlib.ExitStack() as stack:
            try:
                url = stack.enter_context(throwaway_postgres())
            except PostgresUnavailable as exc:
                if os.environ.get("OPENEO_TEST_POSTGRES_SKIP_UNAVAILABLE") == "1":
                    pytest.skip(f"PostgreSQL unavailable: {exc}")
                raise
            yield url

    @pytest.fixture(scope="module")
    def postgres_module_url(postgres_url: str, request) -> Iterator[str]:
        """A fresh, empty database per test module on the session's server (dropped afterwards)."""
        url = create_database(postgres_url, unique_database_name(request.module.__name__.rsplit(".", 1)[-1]))
        try:
            yield url
        finally:
            with contextlib.suppress(Exception):
                drop_database(url)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tests.support.postgres",
        description="Start a throw-away PostgreSQL, print its SQLAlchemy URL, wait until killed.",
    )
    parser.add_argument("--dbname", default="test")
    args = parser.parse_args(argv)

    def _terminate(signum, _frame):
        raise SystemExit(128 + signum)  # unwinds through the context manager -> cleanup

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    # Background jobs of non-interactive shells start with SIGINT ignored; undo that so
    # `kill -INT` works like Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    t0 = time.monotonic()
    try:
        with throwaway_postgres(args.dbname) as url:
            print(url, flush=True)
            print(
                f"[postgres] ready in {time.monotonic() - t0:.2f} s; data in {url.base_dir}\n"
                f"[postgres]   psql '{url.libpq_url}'\n"
                f"[postgres]   export OPENEO_BACKEND_DATABASE_URL='{url}'\n"
                "[postgres] Ctrl-C or SIGTERM stops it and deletes the data.",
                file=sys.stderr, flush=True,
            )
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
    except PostgresUnavailable as exc:
        print(f"[postgres] {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
