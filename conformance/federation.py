"""--self-contained --federation: the aggregator in front of two of this repository's backends, all
trusting the local OIDC test provider (tokens are passed through), on free ports.

Backend A offers the Sentinel-2 and DEM demo collections, backend B Sentinel-1 and DEM (one collection on
both, so merging is exercised); both run their job runner (WP4 creates and starts jobs). The demo catalog
is generated once and linked into both data dirs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from conformance.errors import RunnerError
from conformance.servers import oidc_provider
from tests.support.federation import ServerProcess, start_aggregator, start_backend, wait_ready
from tests.support.oidc_server import OidcTestServer

BACKEND_COLLECTIONS = {"A": ["SENTINEL2_L2A_DEMO", "DEM_DEMO"], "B": ["SENTINEL1_GRD_DEMO", "DEM_DEMO"]}


@contextlib.contextmanager
def local_federation(workdir: Path, oidc: OidcTestServer, extra_backend_env: dict[str, str], timeout: float,
                     advertise_client_credentials: bool = False) -> Iterator[str]:
    """Start two backends and the aggregator; yield the aggregator's root URL."""
    from backend.demo import ensure_demo_catalog

    providers = [oidc_provider(oidc, advertise_client_credentials)]
    print("[conformance] generating the demo catalog (once, shared by both backends)", file=sys.stderr)
    catalog = ensure_demo_catalog(workdir / "demo-catalog").parent
    servers: list[ServerProcess] = []
    try:
        for backend_id, collections in BACKEND_COLLECTIONS.items():
            servers.append(start_backend(workdir / f"backend-{backend_id}", backend_id, collections, catalog=catalog,
                                         job_runner=True, oidc_providers=providers, extra_env=extra_backend_env))
        _ready(servers, timeout)
        backends = {server.name.split()[-1]: server.url for server in servers}
        aggregator = start_aggregator(workdir / "aggregator", backends, oidc_providers=providers)
        servers.append(aggregator)
        _ready([aggregator], timeout)
        print(f"[conformance] federation: aggregator {aggregator.root} over "
              + ", ".join(f"{b} {url}" for b, url in backends.items()), file=sys.stderr)
        yield aggregator.root
    finally:
        for server in reversed(servers):
            server.stop()


def _ready(servers: list[ServerProcess], timeout: float) -> None:
    try:
        wait_ready(servers, timeout=timeout)
    except AssertionError as exc:
        raise RunnerError(str(exc)) from None
