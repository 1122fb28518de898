"""GET /federation/conflicts: what the backends' descriptions disagree on, each backend's value and what
the federation shows, read from the merged listings; admins only."""

from __future__ import annotations

import pytest
import requests

from tests.aggregator.app.conftest import AggregatorServer, settings_for, wait_until
from tests.aggregator.app.test_metadata import SHARED, stocked  # noqa: F401 (stocked: a fixture)

ADMIN = "fed-admin"


@pytest.fixture
def federation(stocked, tmp_path):  # noqa: F811
    """b1 and b2 of ``stocked`` disagreeing on SHARED's title and licence, on add's return value and on
    GTiff's title; the aggregator with ADMIN as its admin."""
    for backend_id, title, licence, returns in (("b1", "Shared (b1)", "proprietary", "number"),
                                                ("b2", "Shared (b2)", "CC-BY-4.0", "integer")):
        documents = stocked[backend_id].documents
        shared = next(c for c in documents["collections"]["collections"] if c["id"] == SHARED)
        shared.update(title=title, license=licence)
        add = next(p for p in documents["processes"]["processes"] if p["id"] == "add")
        add["returns"] = {"schema": {"type": returns}}
        documents["file_formats"]["output"]["GTiff"]["title"] = f"GeoTIFF of {backend_id}"
    server = AggregatorServer(settings_for(tmp_path, {b: fake.url for b, fake in stocked.items()}, admins=[ADMIN],
                                           metadata_cache_ttl=0.3))
    yield server
    server.stop()


def test_conflicts_list_each_backends_value_and_what_is_shown(federation, stocked):  # noqa: F811
    admin = federation.auth_headers(*federation.new_user(name=ADMIN))
    answer = requests.get(f"{federation.url}/federation/conflicts", headers=admin, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["conflicts"] == [
        {"kind": "collection", "id": SHARED, "path": "title", "values": {"b1": "Shared (b1)", "b2": "Shared (b2)"},
         "chosen": "b1", "shown": "Shared (b1)"},
        {"kind": "collection", "id": SHARED, "path": "license",
         "values": {"b1": "proprietary", "b2": "CC-BY-4.0"}, "chosen": "various", "shown": "various"},
        {"kind": "process", "id": "add", "path": "returns.schema",
         "values": {"b1": {"type": "number"}, "b2": {"type": "integer"}}, "chosen": "b1",
         "shown": {"type": "number"}},
        {"kind": "file_format", "id": "output:GTiff", "path": "title",
         "values": {"b1": "GeoTIFF of b1", "b2": "GeoTIFF of b2"}, "chosen": "b1", "shown": "GeoTIFF of b1"},
    ]
    assert answer.json()["federation:missing"] == []
    # "shown" is what users see
    listing = requests.get(f"{federation.url}/collections", timeout=10).json()
    shared = next(c for c in listing["collections"] if c["id"] == SHARED)
    assert (shared["title"], shared["license"]) == ("Shared (b1)", "various")

    only = requests.get(f"{federation.url}/federation/conflicts", params={"kind": "process"}, headers=admin,
                        timeout=10).json()
    assert [(c["kind"], c["id"], c["path"]) for c in only["conflicts"]] == [("process", "add", "returns.schema")]

    # b2 agrees on the title now: once its listing is refreshed the conflict is gone
    shared_b2 = next(c for c in stocked["b2"].documents["collections"]["collections"] if c["id"] == SHARED)
    shared_b2["title"] = "Shared (b1)"
    paths = wait_until(lambda: (found := [c["path"] for c in requests.get(
        f"{federation.url}/federation/conflicts", params={"kind": "collection"}, headers=admin,
        timeout=10).json()["conflicts"]]) != ["title", "license"] and found)
    assert paths == ["license"]


def test_a_missing_backend_is_named(federation, stocked):  # noqa: F811
    admin = federation.auth_headers(*federation.new_user(name=ADMIN))
    stocked["b2"].stop()
    # each listing's snapshot notices on its own: wait until all have, then b1 has nothing to disagree with
    answer = wait_until(lambda: (a := requests.get(f"{federation.url}/federation/conflicts", headers=admin,
                                                   timeout=10).json())["federation:missing"] == ["b2"]
                        and not a["conflicts"] and a)
    assert (answer["federation:missing"], answer["conflicts"]) == (["b2"], [])


def test_only_admins_may_list_conflicts_and_kind_is_checked(federation):
    url = f"{federation.url}/federation/conflicts"
    anonymous = requests.get(url, timeout=10)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "AuthenticationRequired")
    user = federation.auth_headers(*federation.new_user())
    refused = requests.get(url, headers=user, timeout=10)
    assert (refused.status_code, refused.json()["code"]) == (403, "PermissionsInsufficient")
    admin = federation.auth_headers(*federation.new_user(name=ADMIN))
    wrong = requests.get(url, params={"kind": "collections"}, headers=admin, timeout=10)
    assert (wrong.status_code, wrong.json()["code"]) == (400, "BadRequest")
    assert "'kind' must be one of collection, process, file_format, udf_runtime" in wrong.json()["message"]
