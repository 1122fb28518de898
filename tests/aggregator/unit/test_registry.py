"""BackendRegistry: runtime add/remove without restart, snapshots, the persistence hook; Upstreams follow it."""

from __future__ import annotations

import pytest

from aggregator.federation.backends import BackendConfig, BackendRegistry, RegistryError
from aggregator.federation.upstream import Upstreams
from tests.aggregator.conftest import config_for
from tests.support.fake_backends import FakeBackend

A = BackendConfig(id="a", url="http://127.0.0.1:9/openeo/1.2/")
B = BackendConfig(id="b", url="http://127.0.0.1:10/openeo/1.2/")
C = BackendConfig(id="c", url="http://127.0.0.1:11/openeo/1.2/")


class MemoryStore:
    def __init__(self, backends=()):
        self.saved = {b.id: b for b in backends}

    def load(self):
        return list(self.saved.values())

    def save(self, backend):
        self.saved[backend.id] = backend

    def delete(self, backend_id):
        del self.saved[backend_id]


def test_add_and_remove_at_runtime_with_snapshots_and_listeners():
    registry = BackendRegistry([A, B])
    changes = []
    registry.subscribe(lambda: changes.append(registry.ids()))
    before = registry.snapshot()
    registry.add(C)
    assert registry.ids() == ["a", "b", "c"] and before == (A, B)  # an old snapshot never changes
    assert (registry.origin("a"), registry.origin("c"), registry.version) == ("config", "registered", 1)
    assert registry.remove("a") == A
    assert registry.ids() == ["b", "c"] and "a" not in registry and registry.get("a") is None
    assert changes == [["a", "b", "c"], ["b", "c"]]


def test_refusals():
    registry = BackendRegistry([A, B])
    with pytest.raises(RegistryError, match="already exists"):
        registry.add(A)
    with pytest.raises(RegistryError, match="no backend with id 'x'; the backends are a, b"):
        registry.remove("x")
    with pytest.raises(RegistryError, match="fewer than 2 backends"):
        registry.remove("a")
    with pytest.raises(RegistryError, match="configured twice"):
        BackendRegistry([A, A])


def test_store_hook_persists_registrations_only():
    store = MemoryStore([C])
    registry = BackendRegistry([A, B], store=store)
    assert registry.ids() == ["a", "b", "c"] and registry.origin("c") == "registered"
    registry.add(BackendConfig(id="d", url="http://127.0.0.1:12/openeo/1.2/"))
    assert sorted(store.saved) == ["c", "d"]
    registry.remove("c")
    registry.remove("a")  # a configured backend: nothing to delete from the store
    assert sorted(store.saved) == ["d"]


def test_a_failing_store_leaves_the_registry_unchanged():
    class Broken(MemoryStore):
        def save(self, backend):
            raise OSError("disk full")

    registry = BackendRegistry([A, B], store=Broken())
    with pytest.raises(OSError):
        registry.add(C)
    assert registry.ids() == ["a", "b"] and registry.version == 0


def test_upstreams_follow_the_registry(fake):
    with FakeBackend("second") as second:
        registry = BackendRegistry([config_for("good", fake.url), A])
        upstreams = Upstreams(registry)
        assert [u.id for u in upstreams.active()] == ["good", "a"]
        assert upstreams.get("second") is None
        registry.add(config_for("second", second.url))
        assert upstreams.get("second").get_json("")["id"] == "second"  # usable without a restart
        assert upstreams.get("good") is upstreams.get("good")  # one pooled Upstream per backend
        registry.remove("second")
        assert upstreams.get("second") is None and [u.id for u in upstreams.active()] == ["good", "a"]
