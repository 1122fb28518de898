"""Two workers' registries on one database: a registration or removal made through one shows in the
other at its next poll; a removed backend stays as a departure for the errors of its jobs."""

from __future__ import annotations

from aggregator.federation.backends import BackendConfig, BackendRegistry
from aggregator.federation.errors import BackendDeparted
from aggregator.federation.registry_sync import RegistrySync
from aggregator.storage.backend_store import DbBackendStore

CONFIGURED = [BackendConfig(id="a", url="http://127.0.0.1:8081/openeo/1.2"),
              BackendConfig(id="b", url="http://127.0.0.1:8082/openeo/1.2")]
PARTNER = BackendConfig(id="p", url="https://partner.example/openeo/1.2/", title="Partner P")


def two_workers(db):
    first = BackendRegistry(CONFIGURED, store=DbBackendStore(db))
    second = BackendRegistry(CONFIGURED, store=DbBackendStore(db))
    return first, second, RegistrySync(second, DbBackendStore(db))


def test_a_registration_in_one_worker_shows_in_the_other_after_a_poll(db):
    first, second, sync = two_workers(db)
    woken = []
    second.subscribe(lambda: woken.append(True))
    first.add(PARTNER)
    assert second.ids() == ["a", "b"]
    version = second.version
    assert sync.sync_now() is True
    assert second.ids() == ["a", "b", "p"] and second.origin("p") == "registered" and second.version > version
    assert woken == [True]  # the health monitor listens: the new backend is probed at once
    assert sync.sync_now() is False and woken == [True]  # nothing changed: nothing published


def test_a_removal_leaves_a_departure_everywhere(db):
    first, second, sync = two_workers(db)
    first.add(PARTNER)
    sync.sync_now()
    first.remove("p")
    sync.sync_now()
    assert second.ids() == ["a", "b"]
    for registry in (first, second):
        departure = registry.departed("p")
        assert (departure.backend_id, departure.title, departure.url) == ("p", "Partner P", PARTNER.url)
        assert departure.message().startswith("backend 'p' (Partner P) left the federation on 20")
        assert registry.departed("a") is None and registry.departed("unknown") is None
    error = BackendDeparted(second.departed("p"), "Job 'p-123'")
    assert error.status == 410 and error.code == "BackendDeparted"
    assert error.message == f"Job 'p-123' is not available: {second.departed('p').message()}."
    # registering the id again replaces the departure
    first.add(PARTNER)
    sync.sync_now()
    assert second.departed("p") is None and second.departures() == [] and "p" in second
    assert BackendRegistry(CONFIGURED, store=DbBackendStore(db)).ids() == ["a", "b", "p"]
