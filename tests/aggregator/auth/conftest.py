"""Real backends (our openeo-backend apps behind real HTTP servers on 127.0.0.1) trusting the real OIDC
test server (Canaille), and the aggregator's authentication in front of them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from aggregator.auth import FederationAuth, build_auth
from aggregator.federation.backends import BackendConfig
from aggregator.federation.wiring import Federation, build_federation
from aggregator.settings import AggregatorSettings
from aggregator.storage import open_aggregator_database
from backend.app import create_app
from backend.settings import OidcProvider, load_settings
from tests.conftest import LiveServer
from tests.support.oidc.client import DEFAULT_CLIENT_ID
from tests.support.oidc_server import oidc_server  # noqa: F401  (session fixture)

OTHER_ISSUER = "http://127.0.0.1:9/realms/other"  # never contacted: nobody presents its tokens


def start_backend(tmp_path_factory, name: str, providers: list[OidcProvider], **settings) -> LiveServer:
    config = load_settings(data_dir=tmp_path_factory.mktemp(name), demo_catalog=False, oidc_providers=providers,
                           backend_id=name, **settings)
    return LiveServer(create_app(config))


@pytest.fixture(scope="package")
def backends(oidc_server, tmp_path_factory):  # noqa: F811
    """Three real backends: 'alpha' and 'beta' trust the test issuer (under provider ids of their own),
    'gamma' trusts another issuer only. alpha's basic tokens live one hour (shorter than the aggregator's)."""
    servers = {
        "alpha": start_backend(tmp_path_factory, "alpha", [OidcProvider(id="idp-a", issuer=oidc_server.issuer,
                                                                        title="IdP as alpha calls it",
                                                                        audience=oidc_server.client_id)],
                               basic_token_ttl=3600),
        "beta": start_backend(tmp_path_factory, "beta", [OidcProvider(id="shared", issuer=oidc_server.issuer,
                                                                      title="IdP as beta calls it",
                                                                      audience=oidc_server.client_id)]),
        "gamma": start_backend(tmp_path_factory, "gamma", [OidcProvider(id="other", issuer=OTHER_ISSUER,
                                                                        title="Another IdP", audience="gamma")]),
    }
    yield servers
    for server in servers.values():
        server.stop()


@dataclass
class Aggregator:
    settings: AggregatorSettings
    federation: Federation
    auth: FederationAuth

    def rebuilt(self) -> "Aggregator":
        """Another aggregator process on the same settings and data dir (a restart, another worker)."""
        return make_aggregator(self.settings)


def make_aggregator(settings: AggregatorSettings, **auth_options) -> Aggregator:
    db = open_aggregator_database(settings)
    federation = build_federation(settings)
    return Aggregator(settings, federation, build_auth(settings, db, federation, **auth_options))


def aggregator_settings(tmp_path, oidc_issuer: str, backends: dict[str, str], **extra) -> AggregatorSettings:
    # the test server's tokens name its one client as audience (CLIENT_ID is the client the fixture registers)
    return AggregatorSettings(
        data_dir=tmp_path, backends=[BackendConfig(id=backend_id, url=url) for backend_id, url in backends.items()],
        oidc_providers=[OidcProvider(id="fed-idp", issuer=oidc_issuer, title="Federation IdP",
                                     audience=DEFAULT_CLIENT_ID)], **extra)


@pytest.fixture
def aggregator(backends, oidc_server, tmp_path) -> Aggregator:  # noqa: F811
    settings = aggregator_settings(tmp_path, oidc_server.issuer,
                                   {name: server.url for name, server in backends.items()})
    built = make_aggregator(settings)
    yield built
    built.federation.stop()
