"""The `demo_collections` setting: two backends on one demo catalog serve different demo collections, one
(DEM_DEMO) on both, as the aggregator's `demo` federates them. What a backend does not serve does not exist
there: listing, description, queryables, loading and validation all say CollectionNotFound.
"""

from __future__ import annotations

import openeo
import pytest
import requests
from openeo.rest import OpenEoApiError

from backend.app import create_app
from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from backend.settings import load_settings
from tests.conftest import LiveServer

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
SERVED = {"radar": [DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION], "optical": [DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION]}
NOT_SERVED = {"radar": DEMO_S2_COLLECTION, "optical": DEMO_S1_COLLECTION}


@pytest.fixture(scope="module")
def backends(demo_catalog_dir, tmp_path_factory):
    """Two backends with their own data dirs whose demo catalog is the session's (no second generation)."""
    servers = {}
    for name, collections in SERVED.items():
        data_dir = tmp_path_factory.mktemp(name)
        (data_dir / "demo-catalog").symlink_to(demo_catalog_dir)
        servers[name] = LiveServer(create_app(load_settings(data_dir=data_dir, demo_collections=collections)))
    yield servers
    for server in servers.values():
        server.stop()


def _graph(collection_id: str) -> dict:
    temporal = ["2022-01-01", "2023-01-01"]
    return {"load": {"process_id": "load_collection",
                     "arguments": {"id": collection_id, "spatial_extent": AREA, "temporal_extent": temporal}},
            "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                     "result": True}}


@pytest.mark.parametrize("name", SERVED)
def test_listing_has_exactly_the_chosen_collections(backends, name):
    server = backends[name]
    listing = requests.get(f"{server.url}/collections").json()
    assert [c["id"] for c in listing["collections"]] == sorted(SERVED[name])
    first = requests.get(f"{server.url}/collections?limit=1").json()
    second = requests.get(next(link["href"] for link in first["links"] if link["rel"] == "next")).json()
    assert [c["id"] for c in first["collections"] + second["collections"]] == sorted(SERVED[name])
    name_, password = server.new_user()
    connection = openeo.connect(server.url).authenticate_basic(name_, password)
    assert sorted(connection.list_collection_ids()) == sorted(SERVED[name])


@pytest.mark.parametrize("name", SERVED)
def test_a_collection_not_served_is_not_found(backends, name):
    server, missing = backends[name], NOT_SERVED[name]
    for path in (f"/collections/{missing}", f"/collections/{missing}/queryables"):
        response = requests.get(f"{server.url}{path}")
        body = response.json()
        assert (response.status_code, body["code"]) == (404, "CollectionNotFound"), path
        assert missing in body["message"]

    headers = server.auth_headers()
    response = requests.post(f"{server.url}/result", json={"process": {"process_graph": _graph(missing)}},
                             headers=headers)
    body = response.json()
    assert (response.status_code, body["code"]) == (404, "CollectionNotFound") and missing in body["message"]
    response = requests.post(f"{server.url}/validation", json={"process_graph": _graph(missing)}, headers=headers)
    assert [(e["id"], e["code"]) for e in response.json()["errors"]] == [("load", "CollectionNotFound")]

    name_, password = server.new_user()
    connection = openeo.connect(server.url).authenticate_basic(name_, password)
    with pytest.raises(OpenEoApiError) as info:
        connection.load_collection(missing, spatial_extent=AREA, fetch_metadata=False).download(format="GTiff")
    assert (info.value.http_status_code, info.value.code) == (404, "CollectionNotFound")


def test_the_shared_collection_is_the_same_on_both(backends):
    """DEM_DEMO is offered by both: the same document apart from the links to each backend."""
    documents = []
    for server in backends.values():
        document = requests.get(f"{server.url}/collections/{DEMO_DEM_COLLECTION}").json()
        documents.append({key: value for key, value in document.items() if key != "links"})
        validation = requests.post(f"{server.url}/validation", json={"process_graph": _graph(DEMO_DEM_COLLECTION)})
        assert validation.json() == {"errors": []}
    assert documents[0] == documents[1] and documents[0]["cube:dimensions"]["bands"]["values"] == ["DEM"]
