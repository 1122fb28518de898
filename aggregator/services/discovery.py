"""The federation's capabilities fields and health check (apicore.services.DiscoveryService)."""

from __future__ import annotations

import json
import logging

from sqlalchemy import text

from aggregator.parts import AggregatorParts
from backend import __version__

log = logging.getLogger(__name__)

# Federation extension: 0.2.0 (openEO API 1.3); 0.1.0 too, the only version the JS client recognises.
FEDERATION_CONFORMANCE = ["https://api.openeo.org/extensions/federation/0.1.0",
                          "https://api.openeo.org/extensions/federation/0.2.0"]


class FederationDiscovery:
    def __init__(self, parts: AggregatorParts):
        self.parts = parts

    def capabilities(self) -> dict:
        settings = self.parts.settings
        return {
            "id": settings.federation_id, "title": settings.title, "description": settings.description,
            "backend_version": __version__,
            "billing": {"currency": "credits", "default_plan": settings.plans[0].name,
                        "plans": [plan.public() for plan in settings.plans]},
            "conformsTo": FEDERATION_CONFORMANCE,
            "federation": self.parts.federation.details(),
        }

    def capabilities_version(self) -> str:
        # GET / changes with the backends' health (status, last checks) and the registry.
        return json.dumps(self.parts.federation.details(), sort_keys=True)

    def health(self) -> dict:
        """ok while the database answers and any backend is not offline (one whose state is not decided yet
        counts as up: the first probes run at start, the circuit opens after repeated failures)."""
        backends = {backend_id: _state(health) for backend_id, health in
                    self.parts.federation.monitor.all_health().items()}
        try:
            with self.parts.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            database = "ok"
        except Exception as exc:  # the answer must say so, not fail
            log.error("health check: the database does not answer: %s", exc)
            database = "unavailable"
        up = any(state in ("online", "unknown") for state in backends.values())
        status = "ok" if database == "ok" and up else "unavailable"
        return {"status": status, "backend_version": __version__, "database": database, "backends": backends}


def _state(health) -> str:
    """online, offline (its circuit is open: skipped by every call) or unknown (not decided yet)."""
    if health.status == "offline" or health.circuit_open:
        return "offline"
    return health.status or "unknown"
