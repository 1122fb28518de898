"""Backends registered at runtime persist in the aggregator's database (SQLite and PostgreSQL): a registry
built later (a restart, another worker process) has them."""

from __future__ import annotations

from aggregator.federation.backends import BackendConfig, BackendRegistry, CollectionRules
from aggregator.storage.backend_store import DbBackendStore

CONFIGURED = [BackendConfig(id="a", url="http://127.0.0.1:8081/openeo/1.2"),
              BackendConfig(id="b", url="http://127.0.0.1:8082/openeo/1.2")]


def test_registrations_survive_a_restart(db):
    registry = BackendRegistry(CONFIGURED, store=DbBackendStore(db))
    partner = BackendConfig(id="partner", url="https://partner.example/openeo/1.2/", title="Partner",
                            weight=2, collections=CollectionRules(allow=["S2_*"], deny=["S2_OLD"]))
    registry.add(partner)
    registry.add(BackendConfig(id="second", url="https://second.example/openeo/"))
    registry.remove("second")
    restarted = BackendRegistry(CONFIGURED, store=DbBackendStore(db))
    assert restarted.ids() == ["a", "b", "partner"]
    assert restarted.get("partner") == partner and restarted.origin("partner") == "registered"
    restarted.remove("partner")
    assert DbBackendStore(db).load() == []


def test_save_replaces(db):
    store = DbBackendStore(db)
    store.save(BackendConfig(id="p", url="https://one.example/"))
    store.save(BackendConfig(id="p", url="https://two.example/"))
    assert [b.url for b in store.load()] == ["https://two.example/"]
