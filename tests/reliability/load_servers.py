"""Servers of the load suite: `openeo-backend serve` with its defaults (gunicorn workers, sync slots, job runner
on a Dask LocalCluster), optionally `openeo-aggregator serve` in front; a user with enough credits for any
number of requests; that user's ledger entries, read from the server's own database."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import requests

from aggregator.servers import console_command
from backend.accounting.ledger import Ledger
from backend.storage.db import Database
from tests.support.federation import ServerProcess, environment, start_aggregator, start_backend, stop_all, wait_ready

USER = ("load-user", "load-password")
CREDITS = 1_000_000  # every request holds credits while it runs: enough that no hold is ever refused


def serve_backends(catalog: Path, backends: dict[str, tuple[Path, list[str], dict]]) -> dict[str, ServerProcess]:
    """`openeo-backend serve` as a user starts it, its job runner included, for each backend id: (data dir,
    demo collections, settings other than the defaults (``workers``: web workers, default 2)); started
    together, ready when returned."""
    servers: dict[str, ServerProcess] = {}
    try:
        for backend_id, (data_dir, collections, settings) in backends.items():
            settings = {"workers": 2, **settings}
            servers[backend_id] = start_backend(data_dir, backend_id, collections, catalog=catalog, users=[USER],
                                                job_runner=True, **settings)
        wait_ready(servers.values())
        for server in servers.values():
            grant(["openeo-backend", "backend.cli"], ["--data-dir", str(server.data_dir)])
    except BaseException:
        stop_all(servers.values())
        raise
    return servers


def serve_aggregator(data_dir: Path, backends: dict[str, str]) -> ServerProcess:
    """`openeo-aggregator serve` (its defaults: 2 workers) over ``backends``."""
    server = start_aggregator(data_dir, backends, users=[USER], workers=2)
    try:
        wait_ready([server])
        config = data_dir.parent / f"{data_dir.name}.yaml"
        grant(["openeo-aggregator", "aggregator.cli"], ["--data-dir", str(data_dir)], ["--config", str(config)])
    except BaseException:
        server.stop()
        raise
    return server


def grant(command: list[str], options: list[str], before: list[str] = ()) -> None:
    """`<cli> credits grant` (the operator's way) CREDITS to the load user."""
    argv = console_command(*command) + [*before, "credits", "grant", USER[0], str(CREDITS), "--note", "load suite",
                                        *options]
    done = subprocess.run(argv, env=environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def token_headers(url: str) -> dict[str, str]:
    response = requests.get(f"{url}/credentials/basic", auth=USER, timeout=60)
    response.raise_for_status()
    return {"Authorization": f"Bearer basic//{response.json()['access_token']}"}


def ledger_by_ref(database: Path, user_id: str) -> dict[str, dict[str, list[float]]]:
    """The user's ledger entries: ref -> kind -> amounts (credits), and the account's balance beside the sum
    of its entries (they must agree)."""
    db = Database(f"sqlite:///{database}")
    try:
        ledger = Ledger(db)
        refs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for entry in ledger.entries(user_id):
            refs[entry.ref or "-"][entry.kind].append(entry.amount)
        refs["(balance)"]["account"] = [ledger.balance(user_id)]
        refs["(balance)"]["entries"] = [ledger.sum_of_entries(user_id)]
        return refs
    finally:
        db.dispose()
