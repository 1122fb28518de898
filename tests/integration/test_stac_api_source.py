"""Collections from a real STAC API server (rustac serving the demo catalog), with id map and allow-list."""

from __future__ import annotations

import pytest
import requests

from backend.app import create_app
from backend.demo import DEMO_S1_COLLECTION, DEMO_S2_COLLECTION, ensure_demo_catalog
from backend.settings import StacSource, load_settings
from tests.conftest import LiveServer
from tests.support.stac_api_server import serve_stac_api


@pytest.fixture(scope="module")
def stac_api(session_data_dir):
    catalog = ensure_demo_catalog(session_data_dir / "demo-catalog")
    with serve_stac_api(catalog) as url:
        yield url


@pytest.fixture(scope="module")
def backend(stac_api, tmp_path_factory):
    source = StacSource(kind="api", url=stac_api, collections=[DEMO_S2_COLLECTION],
                        id_map={"S2_FROM_API": DEMO_S2_COLLECTION})
    settings = load_settings(data_dir=tmp_path_factory.mktemp("api-source"), demo_catalog=False,
                             stac_sources=[source], collection_cache_ttl=600)
    server = LiveServer(create_app(settings))
    yield server
    server.stop()


def test_listing_uses_id_map_and_allow_list(backend):
    collections = requests.get(f"{backend.url}/collections").json()["collections"]
    assert [c["id"] for c in collections] == ["S2_FROM_API"]  # DEM_DEMO is not on the allow-list
    assert collections[0]["links"][0]["href"] == f"{backend.url}/collections/S2_FROM_API"


def test_description_keeps_dimensions_and_bands(backend):
    metadata = requests.get(f"{backend.url}/collections/S2_FROM_API").json()
    assert metadata["id"] == "S2_FROM_API" and metadata["stac_version"] == "1.0.0"
    assert metadata["cube:dimensions"]["bands"]["values"] == ["B02", "B03", "B04", "B08", "B11", "SCL"]
    assert [b.get("common_name") for b in metadata["summaries"]["eo:bands"]][:4] == ["blue", "green", "red", "nir"]
    t_extent = metadata["cube:dimensions"]["t"]["extent"]
    assert t_extent[0].startswith("2022-04-18") and t_extent[1].startswith("2022-09-15")


def test_stac_ids_not_exposed_under_their_own_name(backend):
    for collection_id in (DEMO_S2_COLLECTION, "DEM_DEMO"):
        response = requests.get(f"{backend.url}/collections/{collection_id}")
        assert (response.status_code, response.json()["code"]) == (404, "CollectionNotFound")


def test_queryables_from_api_items(backend):
    schema = requests.get(f"{backend.url}/collections/S2_FROM_API/queryables").json()
    assert schema["properties"]["eo:cloud_cover"]["type"] == "number"
    assert "platform" in schema["properties"]


def test_cached_metadata_needs_no_round_trip(stac_api, tmp_path_factory, session_data_dir):
    """Within the TTL the backend answers from its cache even when the STAC API is gone."""
    catalog = ensure_demo_catalog(session_data_dir / "demo-catalog")
    with serve_stac_api(catalog) as url:
        settings = load_settings(data_dir=tmp_path_factory.mktemp("cache"), demo_catalog=False,
                                 stac_sources=[StacSource(kind="api", url=url)], collection_cache_ttl=600)
        server = LiveServer(create_app(settings))
        first = requests.get(f"{server.url}/collections/{DEMO_S2_COLLECTION}").json()
        listing = requests.get(f"{server.url}/collections").json()
    try:
        assert requests.get(f"{server.url}/collections/{DEMO_S2_COLLECTION}").json() == first
        assert requests.get(f"{server.url}/collections").json() == listing
        assert {c["id"] for c in listing["collections"]} == {DEMO_S2_COLLECTION, DEMO_S1_COLLECTION, "DEM_DEMO"}
    finally:
        server.stop()


def test_unreachable_api_does_not_stop_the_backend(tmp_path, session_data_dir):
    ensure_demo_catalog(session_data_dir / "demo-catalog")
    (tmp_path / "demo-catalog").symlink_to(session_data_dir / "demo-catalog")  # no second generation
    settings = load_settings(data_dir=tmp_path, stac_sources=[StacSource(kind="api", url="http://127.0.0.1:9")])
    server = LiveServer(create_app(settings))  # demo catalog still served
    try:
        ids = {c["id"] for c in requests.get(f"{server.url}/collections").json()["collections"]}
        assert ids == {DEMO_S2_COLLECTION, DEMO_S1_COLLECTION, "DEM_DEMO"}
    finally:
        server.stop()
