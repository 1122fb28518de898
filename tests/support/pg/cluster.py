"""A private PostgreSQL cluster in a temporary directory: initdb, start, yield a URL, stop, delete.

The server listens on 127.0.0.1 and a free port (unix socket inside the temporary
directory, so it never touches /var/run/postgresql), trusts every local connection and
has durability turned off (fsync etc.; data is disposable).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..processes import file_tail, free_port
from .binaries import ensure_postgres_bindir
from .cleanup import dismiss_watchdog, kill_postmaster, start_watchdog
from .commands import OS_USER, PostgresUnavailable, primary_group, run, run_as_prefix, running_as_root
from .databases import create_empty_database, libpq_url

SUPERUSER = "postgres"  # database superuser created by initdb (-U)
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
        return libpq_url(self)

    def log_tail(self, lines: int = 40) -> str:
        return file_tail(self.log_file, lines)


@contextlib.contextmanager
def throwaway_postgres(dbname: str = "test", *, base_dir: str | os.PathLike | None = None) -> Iterator[PostgresURL]:
    """Start a private PostgreSQL server, yield a SQLAlchemy URL to a new database, clean up.

    ``base_dir``: parent directory for the temporary cluster (default: the system temp
    dir; must be reachable by the ``postgres`` OS user when running as root).
    """
    bindir = ensure_postgres_bindir()
    as_root = running_as_root()
    prefix = run_as_prefix() if as_root else []

    tmp = Path(tempfile.mkdtemp(prefix="pgtest-", dir=_base_dir(base_dir, as_root)))
    data_dir, log_file = tmp / "data", tmp / "server.log"
    stop_cmd = [*prefix, str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "-t", "30", "stop"]
    watchdog: subprocess.Popen | None = None
    started = False
    try:
        if as_root:
            shutil.chown(tmp, user=OS_USER, group=primary_group(OS_USER))
        # Clean up even if this process is killed before the `finally` below runs.
        watchdog = start_watchdog(tmp, data_dir, stop_cmd)
        t0 = time.monotonic()
        run(
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
            create_empty_database(url, dbname)
        _debug(f"cluster ready on port {port} in {time.monotonic() - t0:.2f} s "
               f"(initdb {t_initdb:.2f} s, start {t_start:.2f} s) at {tmp}")
        yield url
    finally:
        if started:
            try:
                run(stop_cmd, cwd=tmp, what="pg_ctl stop", timeout=60)
            except PostgresUnavailable:
                kill_postmaster(data_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        if watchdog is not None:
            dismiss_watchdog(watchdog)


def _start_server(bindir: Path, prefix: list[str], tmp: Path, data_dir: Path, log_file: Path) -> int:
    """Write the config and start; retry with another port if ours was taken meanwhile."""
    last_error = ""
    for _attempt in range(5):
        port = free_port()
        settings = dict(SERVER_SETTINGS, port=str(port), unix_socket_directories=str(tmp))
        # postgresql.auto.conf is read last and owned by the server user; we only rewrite
        # its content (as root we may write it, ownership stays with postgres).
        auto_conf = data_dir / "postgresql.auto.conf"
        auto_conf.write_text(
            "# written by tests/support/postgres.py\n"
            + "".join(f"{k} = {_conf_value(v)}\n" for k, v in settings.items())
        )
        try:
            run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(log_file),
                 "-w", "-t", str(START_TIMEOUT), "start"],
                cwd=tmp, what="pg_ctl start", timeout=START_TIMEOUT + 30,
            )
            return port
        except PostgresUnavailable as exc:
            last_error = f"{exc}\n--- server log ---\n{file_tail(log_file, 30)}"
            kill_postmaster(data_dir)  # in case it half-started
            log_tail = file_tail(log_file, 30)
            if "Address already in use" not in log_tail and "could not bind" not in log_tail:
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


def _debug(msg: str) -> None:
    if os.environ.get("OPENEO_TEST_POSTGRES_DEBUG"):
        print(f"[postgres] {msg}", file=sys.stderr)
