"""The backends of the federation: their configuration (``BackendConfig``), the live registry, and the
``federation`` object of ``GET /`` built from the registry and the health monitor.

``BackendRegistry`` holds the active backends as an immutable snapshot that is swapped atomically, so
request threads read it without locks and see a consistent list even while a partner's backend is added
or removed at runtime. Persistence of runtime registrations is a pluggable ``BackendStore``.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Iterable, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from aggregator.federation.health import HealthMonitor

log = logging.getLogger(__name__)

Origin = Literal["config", "registered"]


def _matches(identifier: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(identifier, pattern) for pattern in patterns)


class CollectionRules(BaseModel):
    """Which of a backend's collections the federation shows: ids or shell patterns (``SENTINEL2_*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: list[str] | None = Field(None, description="Only these collections; unset = all")
    deny: list[str] = Field([], description="Never these collections (wins over allow)")

    def allows(self, collection_id: str) -> bool:
        if _matches(collection_id, self.deny):
            return False
        return self.allow is None or _matches(collection_id, self.allow)


class ProcessRules(BaseModel):
    """Processes of a backend the federation hides (ids or shell patterns)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deny: list[str] = Field([], description="Never these processes")

    def allows(self, process_id: str) -> bool:
        return not _matches(process_id, self.deny)


class BackendConfig(BaseModel):
    """One member of the federation, as the operator configured (or a partner registered) it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=64,
                    description="Short id; prefixes job ids and names the backend in federation:* fields")
    url: str = Field(description="Versioned API root, e.g. https://openeo.example/openeo/1.2/")
    title: str | None = Field(None, description="Name shown to users; default: the id")
    description: str | None = None
    experimental: bool = False
    deprecated: bool = False
    weight: float = Field(1.0, gt=0, description="Routing preference among backends that can run a graph")
    collections: CollectionRules = CollectionRules()
    processes: ProcessRules = ProcessRules()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be an http(s) URL of the backend's versioned API root, not {value!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"url must not have a query or fragment: {value!r}")
        # A trailing slash makes relative paths ("collections") resolve below the API root.
        return value.strip().rstrip("/") + "/"

    @property
    def display_title(self) -> str:
        return self.title or self.id

    def endpoint(self, path: str) -> str:
        """Absolute URL of an API path (``"collections"`` or ``"/jobs/j1"``) on this backend."""
        return self.url + path.lstrip("/")


def check_unique_ids(backends: Iterable[BackendConfig]) -> None:
    counts = Counter(backend.id for backend in backends)
    duplicates = sorted(backend_id for backend_id, count in counts.items() if count > 1)
    if duplicates:
        raise ValueError(f"backend ids must be unique; repeated: {', '.join(duplicates)}")


@dataclass(frozen=True)
class Departure:
    """What is left of a registered backend after its removal: enough for a clear error on its jobs."""

    backend_id: str
    title: str
    url: str
    removed_at: datetime

    def message(self) -> str:
        return (f"backend '{self.backend_id}' ({self.title}) left the federation on "
                f"{_timestamp(self.removed_at)}; its jobs and their results are no longer reachable here")


class BackendStore(Protocol):
    """Where runtime registrations persist (e.g. a DB table); the registry calls it under its lock.

    A store may also keep departures (``departures() -> list[Departure]``, written by ``delete``); the
    registry reads them when the method exists.
    """

    def load(self) -> list[BackendConfig]: ...

    def save(self, backend: BackendConfig) -> None: ...

    def delete(self, backend_id: str) -> None: ...


class RegistryError(ValueError):
    """A registry change that is not allowed (duplicate id, unknown id, too few backends left)."""


class BackendRegistry:
    """Thread-safe set of active backends; readers get immutable snapshots, writers swap them.

    Backends come from the settings (origin ``config``) and from runtime registrations (origin
    ``registered``, persisted through ``store`` when one is given). ``min_backends`` guards removals:
    a federation has at least two members (federation extension: ``minProperties: 2``).
    """

    def __init__(self, configured: Iterable[BackendConfig] = (), *, store: BackendStore | None = None,
                 min_backends: int = 2):
        self._lock = threading.Lock()
        self._store = store
        self._min_backends = min_backends
        self._listeners: list[Callable[[], None]] = []
        entries: dict[str, tuple[BackendConfig, Origin]] = {}
        for backend in configured:
            if backend.id in entries:
                raise RegistryError(f"backend id '{backend.id}' is configured twice")
            entries[backend.id] = (backend, "config")
        for backend in store.load() if store else []:
            if backend.id in entries:
                log.warning("registered backend '%s' shadows nothing: the configured one wins", backend.id)
                continue
            entries[backend.id] = (backend, "registered")
        self._entries = entries
        self._snapshot: tuple[BackendConfig, ...] = tuple(b for b, _ in entries.values())
        self._version = 0
        self._departures: dict[str, Departure] = _departures_of(store)

    # -- reading (lock-free: the snapshot is an immutable tuple replaced as a whole) --

    def snapshot(self) -> tuple[BackendConfig, ...]:
        """The active backends, in configuration order then registration order."""
        return self._snapshot

    @property
    def version(self) -> int:
        """Increases with every change: lets callers cache things derived from a snapshot."""
        return self._version

    def get(self, backend_id: str) -> BackendConfig | None:
        entry = self._entries.get(backend_id)
        return entry[0] if entry else None

    def origin(self, backend_id: str) -> Origin | None:
        entry = self._entries.get(backend_id)
        return entry[1] if entry else None

    def ids(self) -> list[str]:
        return [b.id for b in self._snapshot]

    def __len__(self) -> int:
        return len(self._snapshot)

    def departed(self, backend_id: str) -> Departure | None:
        """The departure of a registered backend that was removed (and not registered again), else None.

        For the jobs service: a job id whose backend prefix is not active but departed answers an error
        with ``departure.message()`` (``aggregator.federation.errors.BackendDeparted(departure)``)."""
        if backend_id in self._entries:
            return None
        return self._departures.get(backend_id)

    def departures(self) -> list[Departure]:
        """Every departure of a backend not active again, oldest first."""
        return sorted((d for d in self._departures.values() if d.backend_id not in self._entries),
                      key=lambda d: d.removed_at)

    def __contains__(self, backend_id: object) -> bool:
        return backend_id in self._entries

    # -- changing --

    def add(self, backend: BackendConfig) -> None:
        """Activate a registered backend (no restart); persisted before it becomes visible."""
        with self._lock:
            if backend.id in self._entries:
                raise RegistryError(f"a backend with id '{backend.id}' already exists; remove it first "
                                    "or choose another id")
            if self._store:
                self._store.save(backend)
            self._publish({**self._entries, backend.id: (backend, "registered")})
        self._notify()

    def remove(self, backend_id: str) -> BackendConfig:
        """Deactivate a backend (configured or registered); refuses to leave fewer than ``min_backends``."""
        with self._lock:
            entry = self._entries.get(backend_id)
            if entry is None:
                raise RegistryError(f"no backend with id '{backend_id}'; the backends are "
                                    f"{', '.join(self._entries) or 'none'}")
            if len(self._entries) - 1 < self._min_backends:
                raise RegistryError(f"removing '{backend_id}' would leave fewer than {self._min_backends} "
                                    "backends in the federation; add another one first")
            if self._store and entry[1] == "registered":
                self._store.delete(backend_id)
                self._departures = _departures_of(self._store)
            self._publish({k: v for k, v in self._entries.items() if k != backend_id})
        self._notify()
        return entry[0]

    def sync(self, registered: Iterable[BackendConfig], departures: Iterable[Departure] = ()) -> bool:
        """Take the store's current registrations (another process may have changed them): configured
        backends stay, registered ones become exactly ``registered``. Returns whether anything changed."""
        with self._lock:
            entries = {k: v for k, v in self._entries.items() if v[1] == "config"}
            for backend in registered:
                entries.setdefault(backend.id, (backend, "registered"))
            self._departures = {d.backend_id: d for d in departures}
            changed = list(entries.items()) != list(self._entries.items())
            if changed:
                self._publish(entries)
        if changed:
            self._notify()
        return changed

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (no arguments, outside the lock) after every add or remove."""
        with self._lock:
            self._listeners.append(listener)

    def _publish(self, entries: dict[str, tuple[BackendConfig, Origin]]) -> None:
        self._entries = entries
        self._snapshot = tuple(b for b, _ in entries.values())
        self._version += 1

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener's bug must not undo a committed change
                log.exception("backend registry listener failed")


def _departures_of(store: BackendStore | None) -> dict[str, Departure]:
    departures = getattr(store, "departures", None)
    return {d.backend_id: d for d in departures()} if departures else {}


def _timestamp(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def federation_details(registry: BackendRegistry, monitor: "HealthMonitor") -> dict[str, dict]:
    """The ``federation`` object of ``GET /`` (federation extension 0.2.0), one entry per active backend.

    A backend not yet observed (the first probe runs right after start) has no ``status`` and no
    ``last_status_check`` (the extension's default status is "online"); ``last_successful_check`` is
    null until a probe has succeeded.
    """
    details = {}
    for config in registry.snapshot():
        state = monitor.health(config.id)
        entry: dict = {"url": config.url, "title": config.display_title}
        if config.description:
            entry["description"] = config.description
        if state.status is not None:
            entry["status"] = state.status
        if state.last_status_check is not None:
            entry["last_status_check"] = _timestamp(state.last_status_check)
        entry["last_successful_check"] = _timestamp(state.last_successful_check)
        entry["experimental"] = config.experimental
        entry["deprecated"] = config.deprecated
        details[config.id] = entry
    return details
