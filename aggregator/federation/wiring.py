"""The federation layer assembled from the settings: what ``create_app`` keeps and the views use.

    federation = build_federation(settings)     # in create_app (gunicorn's master: starts no thread)
    federation.start()                          # in each serving process, after the fork
    answer = federation.fan_out(lambda upstream: upstream.get_json("collections", headers=auth))
    answer.successes  # {backend id: document};  answer.missing  # -> federation:missing
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, TypeVar

from aggregator.federation.backends import BackendRegistry, BackendStore, federation_details
from aggregator.federation.caching import StaleWhileRevalidateCache
from aggregator.federation.fanout import FanOut, FanOutPool
from aggregator.federation.health import HealthMonitor, Probe
from aggregator.federation.registry_sync import RegistrySync
from aggregator.federation.upstream import Upstream, Upstreams

if TYPE_CHECKING:
    from aggregator.settings import AggregatorSettings

T = TypeVar("T")


@dataclass
class Federation:
    registry: BackendRegistry
    monitor: HealthMonitor
    upstreams: Upstreams
    pool: FanOutPool
    metadata_cache: StaleWhileRevalidateCache
    deadline: float  # default overall deadline of a fan-out, seconds
    registry_sync: RegistrySync | None = None  # follows registrations made by other processes

    def fan_out(self, call: Callable[[Upstream], T], *, backend_ids: Iterable[str] | None = None,
                deadline: float | None = None) -> FanOut[T]:
        """``call(upstream)`` on every active backend (or those of ``backend_ids``) within the deadline."""
        upstreams = self.upstreams.active() if backend_ids is None else self.upstreams.select(backend_ids)
        return self.pool.fan_out(upstreams, call, deadline=self.deadline if deadline is None else deadline)

    def details(self) -> dict[str, dict]:
        """The ``federation`` object of ``GET /``."""
        return federation_details(self.registry, self.monitor)

    def start(self) -> "Federation":
        """Start the health monitor (and the registry's polling) in this process (call after forking;
        idempotent)."""
        self.monitor.start()
        if self.registry_sync is not None:
            self.registry_sync.start()
        return self

    def stop(self) -> None:
        if self.registry_sync is not None:
            self.registry_sync.stop()
        self.monitor.stop()
        self.pool.shutdown()


def build_federation(settings: "AggregatorSettings", *, store: BackendStore | None = None,
                     probe: Probe | None = None) -> Federation:
    """Registry (configured + ``store``'s registered backends), monitor, upstreams, pool and cache."""
    registry = BackendRegistry(settings.backends, store=store)
    monitor = HealthMonitor(registry, interval=settings.health_interval, timeout=settings.health_timeout,
                            failure_threshold=settings.circuit_failure_threshold, recheck=settings.health_recheck,
                            history_size=settings.health_history, probe=probe)
    upstreams = Upstreams(registry, timeouts=settings.timeouts, health=monitor, pool_size=settings.upstream_pool_size)
    pool = FanOutPool(settings.fanout_workers, max_pending_per_backend=settings.upstream_pool_size)
    cache = StaleWhileRevalidateCache(settings.metadata_cache_ttl, max_stale=settings.metadata_cache_max_stale)
    sync = RegistrySync(registry, store, settings.registry_poll_interval) if hasattr(store, "state") else None
    return Federation(registry, monitor, upstreams, pool, cache, settings.fanout_deadline, sync)
