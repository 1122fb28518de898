"""The aggregator's parts, built once from the settings and shared by all requests (thread-safe each):
what the services of ``aggregator/services/`` work on. ``create_app`` keeps them in
``app.extensions["openeo_aggregator"]``.

Building them starts no thread: the health monitor is started by ``start()`` in each serving process
(after gunicorn forks; at app creation for the development server and tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.accounting import FederationAccounting
from aggregator.auth import FederationAuth, build_auth
from aggregator.federation.in_flight import InFlight
from aggregator.federation.wiring import Federation, build_federation
from aggregator.metadata import FederatedMetadata
from aggregator.settings import AggregatorSettings, require_federation
from aggregator.storage import open_aggregator_database
from aggregator.storage.backend_store import DbBackendStore
from backend.storage.db import Database
from backend.storage.udps import UdpStore


@dataclass
class AggregatorParts:
    settings: AggregatorSettings
    db: Database
    federation: Federation
    auth: FederationAuth
    accounting: FederationAccounting
    udps: UdpStore  # the users' UDPs live in the aggregator's database (the backend's store)
    metadata: FederatedMetadata
    in_flight: InFlight  # proxied requests per backend, the routing's load figure

    def start(self) -> "AggregatorParts":
        """Background work of a serving process (the health monitor); idempotent, fork-aware."""
        self.federation.start()
        return self

    def stop(self) -> None:
        self.federation.stop()


def build_parts(settings: AggregatorSettings) -> AggregatorParts:
    """Every part; refuses (FederationConfigError) a federation of fewer than two backends, counting the
    backends partners registered at runtime (kept in the database)."""
    db = open_aggregator_database(settings)
    store = DbBackendStore(db)
    require_federation(settings, store.load())
    federation = build_federation(settings, store=store)
    return AggregatorParts(
        settings=settings, db=db, federation=federation,
        auth=build_auth(settings, db, federation, token_ttl=settings.basic_token_ttl),
        accounting=FederationAccounting(db, settings.plans, settings.free_credits),
        udps=UdpStore(db), metadata=FederatedMetadata(federation), in_flight=InFlight())
