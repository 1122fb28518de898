"""Keeps a worker's ``BackendRegistry`` in step with the database: a backend registered or removed
through another gunicorn worker (or the CLI, while the server runs) becomes active or inactive here
within ``interval`` seconds, without a restart.

One small read of the registrations table per interval (a handful of rows); the registry only publishes,
and its listeners (the health monitor) only wake, when something changed. Start it in each serving
process after the fork, like the health monitor.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Protocol

from aggregator.federation.backends import BackendConfig, BackendRegistry, Departure

log = logging.getLogger(__name__)


class StoreState(Protocol):
    def state(self) -> tuple[list[BackendConfig], list[Departure]]: ...


class RegistrySync:
    def __init__(self, registry: BackendRegistry, store: StoreState, interval: float = 2.0):
        self.registry = registry
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def sync_now(self) -> bool:
        """Read the store once and apply it; True when the registry changed."""
        registered, departures = self.store.state()
        changed = self.registry.sync(registered, departures)
        if changed:
            log.info("backend registrations changed: active backends now %s", ", ".join(self.registry.ids()))
        return changed

    def start(self) -> "RegistrySync":
        """Poll in a daemon thread of this process (idempotent; call after a fork)."""
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return self
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync_now()
            except Exception:  # a DB hiccup must not end the polling
                log.exception("reading the backend registrations failed; retrying in %g s", self.interval)
