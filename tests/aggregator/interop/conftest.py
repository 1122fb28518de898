"""A federation with a backend that is not ours: openeo-driver's dummy backend (from the anchors venv,
tests/support/anchors.py) next to one `openeo-backend serve` (A: Sentinel-2 and DEM demo collections), our
aggregator in front; one user with the same basic credentials everywhere, and the OIDC test server trusted
by all three (under a provider id of each one's own). Skipped when the anchors venv is not installed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S2_COLLECTION
from tests.support.anchors import AnchorServer, anchors_bin, start_dummy_backend  # noqa: F401 (fixture)
from tests.support.federation import ServerProcess, start_aggregator, start_backend, wait_ready
from tests.support.oidc.client import DEFAULT_CLIENT_ID
from tests.support.oidc_server import oidc_server  # noqa: F401  (session fixture)

USER = ("alice", "alice-pw")
FAST_HEALTH = {"health_interval": 1.0, "health_recheck": 0.5, "health_timeout": 2.0, "fanout_deadline": 3.0,
               "metadata_timeout": 5.0}


@dataclass
class MixedFederation:
    ours: ServerProcess
    dummy: AnchorServer
    aggregator: ServerProcess
    oidc_issuer: str


def provider(provider_id: str, issuer: str) -> dict:
    return {"id": provider_id, "issuer": issuer, "title": f"Test IdP as {provider_id}", "scopes": ["openid"],
            "audience": DEFAULT_CLIENT_ID}  # the test server's tokens name its one client


@pytest.fixture(scope="package")
def mixed(anchors_bin, demo_catalog_dir, oidc_server, tmp_path_factory) -> MixedFederation:  # noqa: F811
    base = tmp_path_factory.mktemp("interop")
    issuer = oidc_server.issuer
    dummy = ours = aggregator = None
    try:
        dummy = start_dummy_backend(base / "dummy", name="dummy", users=dict([USER]), oidc_issuer=issuer)
        ours = start_backend(base / "a", "A", [DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION], catalog=demo_catalog_dir,
                             users=[USER], oidc_providers=[provider("idp-a", issuer)])
        wait_ready([ours])
        aggregator = start_aggregator(base / "aggregator", {"A": ours.url, "dummy": dummy.url}, users=[USER],
                                      oidc_providers=[provider("fed-idp", issuer)], **FAST_HEALTH)
        wait_ready([aggregator])
        yield MixedFederation(ours, dummy, aggregator, issuer)
    finally:
        for server in (aggregator, ours, dummy):
            if server is not None:
                server.stop()
