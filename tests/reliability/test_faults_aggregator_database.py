"""The aggregator's own database (users, federation ledger) unreachable for a while: 503 openEO errors with
``Retry-After`` for what needs it, never 500, and recovery without a restart (issue 13; the backend's twin is
test_faults_database.py). A real PostgreSQL behind a TCP proxy on loopback that the test cuts."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.aggregator.app.conftest import AggregatorServer, settings_for
from tests.support.fake_backends import FakeBackend
from tests.support.postgres import create_database, drop_database, postgres_url, unique_database_name  # noqa: F401
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxied(postgres_url, tmp_path):  # noqa: F811
    url = create_database(postgres_url, unique_database_name("faults_aggregator_db"))
    parsed = make_url(url)
    with FakeBackend("b1") as one, FakeBackend("b2") as two, TcpProxy(parsed.host, parsed.port) as proxy:
        database_url = parsed.set(port=proxy.port).render_as_string(hide_password=False)
        server = AggregatorServer(settings_for(tmp_path, {"b1": one.url, "b2": two.url}, database_url=database_url))
        try:
            yield server, proxy
        finally:
            server.stop()
    drop_database(url)


def test_aggregator_database_outage_answers_503_then_recovers(proxied):
    server, proxy = proxied
    name, password = server.new_user()
    headers = server.auth_headers(name, password)
    me = requests.get(f"{server.url}/me", headers=headers, timeout=30)
    assert me.status_code == 200 and me.json()["user_id"]

    proxy.cut()
    try:
        during = requests.get(f"{server.url}/me", headers=headers, timeout=30)
        assert during.status_code == 503, during.text
        assert during.json()["code"] == "InfrastructureBusy"
        assert "database cannot be reached" in during.json()["message"]
        assert int(during.headers["Retry-After"]) > 0
        capabilities = requests.get(f"{server.url}/", timeout=30)  # needs no database
        assert capabilities.status_code == 200 and capabilities.json()["api_version"] == "1.2.0"
    finally:
        proxy.restore()

    after = requests.get(f"{server.url}/me", headers=headers, timeout=30)
    assert after.status_code == 200 and after.json()["user_id"] == me.json()["user_id"]
