"""Databases on a PostgreSQL server: create (empty), drop, name; the libpq form of a URL."""

from __future__ import annotations

import re
import uuid


def libpq_url(url: str) -> str:
    """The same server/database as a libpq URL (for psycopg.connect, psql)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin_connect(url: str):
    """Autocommit psycopg connection to the maintenance database of ``url``'s server."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    return psycopg.connect(admin, autocommit=True, connect_timeout=10)


def _drop_if_exists(conn, name: str) -> None:
    from psycopg import sql

    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create_empty_database(url: str, name: str) -> None:
    """(Re-)create database ``name`` on ``url``'s server, empty."""
    from psycopg import sql

    with _admin_connect(url) as conn:
        _drop_if_exists(conn, name)
        # template0: really empty, whatever was put into template1. FILE_COPY (PG 15+) is a
        # bit faster than 15's default WAL_LOG for a small template when fsync is off.
        strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'" + strategy).format(
            sql.Identifier(name)))


def create_database(url: str, name: str) -> str:
    """Create (or re-create, empty) database ``name`` on ``url``'s server; return its URL.

    ``url`` is any SQLAlchemy URL of that server (its own database must exist).
    The returned URL keeps the driver, user, password, host and port of ``url``.
    """
    from sqlalchemy.engine import make_url

    if not name or len(name.encode()) > 63:
        raise ValueError(f"database name must be 1..63 bytes: {name!r}")
    create_empty_database(url, name)
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` (disconnecting its sessions); no error if missing."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if not name or name == "postgres":
        raise ValueError(f"refusing to drop {name!r}")
    with _admin_connect(url) as conn:
        _drop_if_exists(conn, name)


def unique_database_name(hint: str) -> str:
    """A valid, unique database name derived from ``hint`` (e.g. a module name)."""
    base = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_")[:40] or "db"
    return f"{base}_{uuid.uuid4().hex[:8]}"
