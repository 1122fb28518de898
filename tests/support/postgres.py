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
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

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
    "find_postgres_bindir",
    "ensure_postgres_bindir",
    "postgres_url",
    "postgres_module_url",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
ENSURE_SCRIPT = REPO_ROOT / "scripts" / "ensure-postgres.sh"
SUPERUSER = "postgres"  # database superuser created by initdb (-U)
OS_USER = "postgres"  # OS account that runs the server when we are root
START_TIMEOUT = 60  # seconds for pg_ctl -w start/stop

# Settings for a disposable test server: no durability, no background noise.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "1h",
    "autovacuum": "off",
    "jit": "off",
    "max_parallel_workers_per_gather": "0",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "dynamic_shared_memory_type": "mmap",  # not /dev/shm: tiny in Docker (64 MB)
    "timezone": "UTC",
    "log_timezone": "UTC",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_checkpoints": "off",
    "log_connections": "off",
    "log_disconnections": "off",
}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries cannot be found or installed, or the server did not start."""


class PostgresURL(str):
    """The SQLAlchemy URL (a plain ``str``) plus facts about the throw-away cluster."""

    port: int
    base_dir: Path  # temporary directory, removed on exit
    data_dir: Path  # PGDATA, inside base_dir
    socket_dir: Path  # unix socket directory (== base_dir)
    log_file: Path  # server log, inside base_dir
    bindir: Path
    dbname: str

    @property
    def libpq_url(self) -> str:
        """The same server/database as a libpq URL (for psycopg.connect, psql)."""
        return _libpq_url(self)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_file, lines)


# --------------------------------------------------------------------------- binaries


def find_postgres_bindir() -> Path | None:
    """Directory with initdb and pg_ctl: $PG_BINDIR, Debian's layout, then PATH."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        d = Path(explicit)
        return d if _has_server_binaries(d) else None
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    for d in candidates:
        if _has_server_binaries(d):
            return d
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    return None


def ensure_postgres_bindir() -> Path:
    """Find the server binaries, installing them with scripts/ensure-postgres.sh if needed."""
    found = find_postgres_bindir()
    if found:
        return found
    if not ENSURE_SCRIPT.exists():
        raise PostgresUnavailable(f"no initdb/pg_ctl found and {ENSURE_SCRIPT} is missing")
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ENSURE_SCRIPT)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise PostgresUnavailable(
            f"{ENSURE_SCRIPT.name} failed (exit {proc.returncode}) after {elapsed:.0f} s:\n"
            + _last_lines(proc.stderr, 30)
        )
    lines = proc.stdout.strip().splitlines()
    bindir = Path(lines[-1]) if lines else None
    if bindir is None or not _has_server_binaries(bindir):
        bindir = find_postgres_bindir()
    if bindir is None:
        raise PostgresUnavailable(f"{ENSURE_SCRIPT.name} ran but initdb/pg_ctl are still missing")
    print(f"[postgres] installed PostgreSQL in {elapsed:.1f} s ({bindir})", file=sys.stderr)
    return bindir


def _has_server_binaries(d: Path) -> bool:
    return all(os.access(d / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name)) or (-1,)


# --------------------------------------------------------------------------- cluster


@contextlib.contextmanager
def throwaway_postgres(dbname: str = "test", *, base_dir: str | os.PathLike | None = None) -> Iterator[PostgresURL]:
    """Start a private PostgreSQL server, yield a SQLAlchemy URL to a new database, clean up.

    ``base_dir``: parent directory for the temporary cluster (default: the system temp
    dir; must be reachable by the ``postgres`` OS user when running as root).
    """
    bindir = ensure_postgres_bindir()
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    prefix = _run_as_prefix() if as_root else []

    tmp = Path(tempfile.mkdtemp(prefix="pgtest-", dir=_base_dir(base_dir, as_root)))
    data_dir, log_file = tmp / "data", tmp / "server.log"
    stop_cmd = [*prefix, str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "-t", "30", "stop"]
    watchdog: subprocess.Popen | None = None
    started = False
    try:
        if as_root:
            shutil.chown(tmp, user=OS_USER, group=_primary_group(OS_USER))
        # Clean up even if this process is killed before the `finally` below runs.
        watchdog = _start_watchdog(tmp, data_dir, stop_cmd)
        t0 = time.monotonic()
        _run(
            [*prefix, str(bindir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER,
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            cwd=tmp, what="initdb",
        )
        t_initdb = time.monotonic() - t0

        port = _start_server(bindir, prefix, tmp, data_dir, log_file)
        started = True
        t_start = time.monotonic() - t0 - t_initdb

        url = PostgresURL(f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{dbname}")
        url.port, url.base_dir, url.data_dir, url.socket_dir = port, tmp, data_dir, tmp
        url.log_file, url.bindir, url.dbname = log_file, bindir, dbname
        if dbname != "postgres":
            _create_db(url, dbname)
        _debug(f"cluster ready on port {port} in {time.monotonic() - t0:.2f} s "
               f"(initdb {t_initdb:.2f} s, start {t_start:.2f} s) at {tmp}")
        yield url
    finally:
        if started:
            try:
                _run(stop_cmd, cwd=tmp, what="pg_ctl stop", timeout=60)
            except PostgresUnavailable:
                _kill_postmaster(data_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        if watchdog is not None:
            watchdog.stdin.close()  # tells it we are done; the directory is gone, so it just exits
            try:
                watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()


def _start_server(bindir: Path, prefix: list[str], tmp: Path, data_dir: Path, log_file: Path) -> int:
    """Write the config and start; retry with another port if ours was taken meanwhile."""
    last_error = ""
    for _attempt in range(5):
        port = _free_port()
        settings = dict(SERVER_SETTINGS, port=str(port), unix_socket_directories=str(tmp))
        # postgresql.auto.conf is read last and owned by the server user; we only rewrite
        # its content (as root we may write it, ownership stays with postgres).
        auto_conf = data_dir / "postgresql.auto.conf"
        auto_conf.write_text(
            "# written by tests/support/postgres.py\n"
            + "".join(f"{k} = {_conf_value(v)}\n" for k, v in settings.items())
        )
        try:
            _run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(log_file),
                 "-w", "-t", str(START_TIMEOUT), "start"],
                cwd=tmp, what="pg_ctl start", timeout=START_TIMEOUT + 30,
            )
            return port
        except PostgresUnavailable as exc:
            last_error = f"{exc}\n--- server log ---\n{_tail(log_file, 30)}"
            _kill_postmaster(data_dir)  # in case it half-started
            if "Address already in use" not in _tail(log_file, 30) and "could not bind" not in _tail(log_file, 30):
                break
    raise PostgresUnavailable(last_error)


def _conf_value(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"  # any setting may be quoted (ALTER SYSTEM does)


def _base_dir(base_dir: str | os.PathLike | None, as_root: bool) -> str:
    d = str(base_dir) if base_dir is not None else tempfile.gettempdir()
    if as_root and not _traversable_by_others(d):
        # e.g. TMPDIR=/root/tmp: the postgres user could not reach the cluster.
        d = "/tmp"
    # unix socket paths are limited to ~107 bytes; fall back to a short base dir.
    if len(d) > 60:
        d = "/tmp"
    return d


def _traversable_by_others(path: str) -> bool:
    p = Path(path).resolve()
    for part in [p, *p.parents]:
        try:
            if not part.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _run_as_prefix() -> list[str]:
    import pwd

    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, but there is no '{OS_USER}' OS user to run PostgreSQL as "
            "(Debian's postgresql package creates it)"
        ) from None
    if shutil.which("runuser"):
        return ["runuser", "-u", OS_USER, "--"]
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={OS_USER}", f"--regid={_primary_group(OS_USER)}", "--init-groups", "--"]
    raise PostgresUnavailable("running as root, but neither runuser nor setpriv is available")


def _primary_group(user: str) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def _child_env() -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, PGHOST, ...) would redirect initdb/pg_ctl.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    return env


def _run(cmd: list[str], *, cwd: Path, what: str, timeout: float = 120) -> None:
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=_child_env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresUnavailable(f"{what} timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise PostgresUnavailable(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"{_last_lines(proc.stdout, 20)}\n{_last_lines(proc.stderr, 20)}"
        )


def _start_watchdog(tmp: Path, data_dir: Path, stop_cmd: list[str]) -> subprocess.Popen:
    """A detached helper that stops the server and deletes ``tmp`` once our end of its
    stdin pipe is closed -- which the kernel also does when this process dies."""
    script = (
        'cat >/dev/null 2>&1\n'  # returns on EOF: we are done or dead
        'tmp=$1; data=$2; shift 2\n'
        'if [ -f "$data/postmaster.pid" ]; then "$@" >/dev/null 2>&1; fi\n'
        'rm -rf "$tmp"\n'
    )
    return subprocess.Popen(
        ["sh", "-c", script, "pg-watchdog", str(tmp), str(data_dir), *stop_cmd],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd="/", env=_child_env(), start_new_session=True,  # survive Ctrl-C to our group
    )


def _kill_postmaster(data_dir: Path) -> None:
    """Last resort: SIGKILL the postmaster of *this* data directory (pid from postmaster.pid)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    # Its backends exit on their own once the postmaster is gone; give them a moment.
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int) -> str:
    try:
        return _last_lines(path.read_text(errors="replace"), lines)
    except OSError:
        return ""


def _last_lines(text: str, n: int) -> str:
    return "\n".join((text or "").strip().splitlines()[-n:])


def _debug(msg: str) -> None:
    if os.environ.get("OPENEO_TEST_POSTGRES_DEBUG"):
        print(f"[postgres] {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- databases


def _libpq_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin_connect(url: str):
    """Autocommit psycopg connection to the maintenance database of ``url``'s server."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    return psycopg.connect(admin, autocommit=True, connect_timeout=10)


def _create_db(url: str, name: str) -> None:
    from psycopg import sql

    with _admin_connect(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
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
    _create_db(url, name)
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` (disconnecting its sessions); no error if missing."""
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if not name or name == "postgres":
        raise ValueError(f"refusing to drop {name!r}")
    with _admin_connect(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def unique_database_name(hint: str) -> str:
    """A valid, unique database name derived from ``hint`` (e.g. a module name)."""
    base = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_")[:40] or "db"
    return f"{base}_{uuid.uuid4().hex[:8]}"


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
