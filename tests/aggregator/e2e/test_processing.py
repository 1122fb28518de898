"""Metadata, POST /result and POST /validation through the aggregator with the real `openeo` client, in front
of two real backends (A: S2 + DEM, B: S1 + DEM): routed to the backend that has the data, values equal to
the same request sent to that backend directly, costs charged once to the federation's ledger."""

from __future__ import annotations

import math

import numpy as np
import openeo
import pytest
import requests

from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from tests.aggregator.e2e.conftest import USER
from tests.aggregator.e2e.graphs import AREA, JUNE, dem, ndvi, read, s1_mean


@pytest.fixture(scope="module")
def aggregator(federation) -> openeo.Connection:
    return openeo.connect(federation.aggregator.url).authenticate_basic(*USER)


def direct(url: str) -> openeo.Connection:
    return openeo.connect(url).authenticate_basic(*USER)


def post_result(federation, graph: dict, **extra) -> requests.Response:
    token = requests.get(f"{federation.aggregator.url}/credentials/basic", auth=USER, timeout=30).json()["access_token"]
    return requests.post(f"{federation.aggregator.url}/result", json={"process": {"process_graph": graph}, **extra},
                         headers={"Authorization": f"Bearer basic//{token}"}, timeout=120)


def test_collections_of_every_backend_with_where_they_live(aggregator):
    listing = aggregator.get("/collections").json()
    by_id = {c["id"]: c for c in listing["collections"]}
    assert set(by_id) == {DEMO_S2_COLLECTION, DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION}
    assert by_id[DEMO_S2_COLLECTION]["federation:backends"] == ["A"]
    assert by_id[DEMO_S1_COLLECTION]["federation:backends"] == ["B"]
    assert sorted(by_id[DEMO_DEM_COLLECTION]["federation:backends"]) == ["A", "B"]
    assert listing.get("federation:missing", []) == []
    s1 = aggregator.describe_collection(DEMO_S1_COLLECTION)
    assert s1["cube:dimensions"]["bands"]["values"] == ["VV", "VH"]


def test_capabilities_list_both_backends_online(aggregator, federation):
    capabilities = aggregator.get("/").json()
    assert {b: capabilities["federation"][b]["status"] for b in ("A", "B")} == {"A": "online", "B": "online"}
    assert capabilities["federation"]["B"]["url"].rstrip("/") == federation.b.url
    details = aggregator.capabilities().ext_federation_backend_details()
    assert set(details) == {"A", "B"}


@pytest.mark.parametrize("graph_of, backend, url_of", [
    (ndvi, "A", lambda f: f.a.url),
    (s1_mean, "B", lambda f: f.b.url),
])
def test_sync_result_runs_where_the_data_is_with_the_same_values(aggregator, federation, tmp_path, graph_of,
                                                                  backend, url_of):
    graph_of(aggregator).download(tmp_path / "via-aggregator.tif", format="GTiff")
    graph_of(direct(url_of(federation))).download(tmp_path / "direct.tif", format="GTiff")
    via, expected = read(tmp_path / "via-aggregator.tif"), read(tmp_path / "direct.tif")
    assert via.shape == expected.shape and via.size > 1000
    assert np.isfinite(via).sum() > 0.9 * via.size
    np.testing.assert_array_equal(via, expected)

    response = post_result(federation, graph_of(aggregator).flat_graph())
    assert response.status_code == 200, response.text
    assert response.headers["OpenEO-Federation-Backend"] == backend
    assert "offer" in response.headers["OpenEO-Federation-Reason"] or backend in response.headers["OpenEO-Federation-Reason"]


def test_collection_on_both_backends_goes_to_either_and_force_backend_wins(aggregator, federation):
    graph = dem(aggregator).flat_graph()
    chosen = post_result(federation, graph)
    assert chosen.status_code == 200, chosen.text
    assert chosen.headers["OpenEO-Federation-Backend"] in ("A", "B")
    other = "B" if chosen.headers["OpenEO-Federation-Backend"] == "A" else "A"
    forced = post_result(federation, graph, job_options={"federation:force-backend": other})
    assert forced.status_code == 200, forced.text
    assert forced.headers["OpenEO-Federation-Backend"] == other
    assert forced.content[:4] in (b"II*\x00", b"MM\x00*")


def test_force_backend_is_obeyed_and_the_backend_answer_names_it(federation, aggregator):
    """Forcing is the user's override, so the graph goes to A although A lacks the collection: A's own
    404 comes back, saying it was A."""
    response = post_result(federation, s1_mean(aggregator).flat_graph(), **{"federation:force-backend": "A"})
    assert response.status_code == 404
    error = response.json()
    assert error["code"] == "CollectionNotFound"
    assert "'A'" in error["message"] and DEMO_S1_COLLECTION in error["message"]


def test_result_costs_are_charged_once_to_the_federation(federation):
    session = requests.Session()
    token = session.get(f"{federation.aggregator.url}/credentials/basic", auth=USER, timeout=30).json()["access_token"]
    session.headers["Authorization"] = f"Bearer basic//{token}"
    before = session.get(f"{federation.aggregator.url}/me", timeout=30).json()["budget"]
    connection = openeo.connect(federation.aggregator.url).authenticate_basic(*USER)
    response = session.post(f"{federation.aggregator.url}/result", timeout=120,
                            json={"process": {"process_graph": ndvi(connection).flat_graph()}})
    assert response.status_code == 200, response.text
    costs = float(response.headers["OpenEO-Costs"])
    assert costs > 0
    after = session.get(f"{federation.aggregator.url}/me", timeout=30).json()["budget"]
    assert math.isclose(before - after, costs, rel_tol=1e-9, abs_tol=1e-9)


def test_validation_lists_every_backend_able_to_run_the_graph(aggregator):
    both = aggregator.post("/validation", json={"process_graph": dem(aggregator).flat_graph()}).json()
    assert both["errors"] == []
    assert sorted(both["federation:backends"]) == ["A", "B"]
    one = aggregator.post("/validation", json={"process_graph": ndvi(aggregator).flat_graph()}).json()
    assert one["errors"] == [] and one["federation:backends"] == ["A"]


def test_validation_of_a_graph_no_backend_can_run_says_what_is_missing(aggregator):
    graph = {"load": {"process_id": "load_collection", "arguments": {"id": "NO_SUCH_COLLECTION",
                                                                     "spatial_extent": None, "temporal_extent": None}},
             "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                      "result": True}}
    document = aggregator.post("/validation", json={"process_graph": graph}).json()
    assert [error["code"] for error in document["errors"]] == ["CollectionNotFound"]
    assert "NO_SUCH_COLLECTION" in document["errors"][0]["message"]
    assert document["federation:backends"] == []


def test_a_backend_error_keeps_its_code_and_names_the_backend(federation, aggregator):
    cube = aggregator.load_collection(DEMO_S1_COLLECTION, spatial_extent=AREA, temporal_extent=JUNE, bands=["VV"])
    graph = cube.reduce_dimension("t", "no_such_reducer_process_xyz").flat_graph()
    response = post_result(federation, graph)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "ProcessUnsupported"
    assert "no_such_reducer_process_xyz" in error["message"]


def test_a_user_defined_process_stored_at_the_aggregator_runs_on_the_chosen_backend(aggregator, tmp_path):
    from openeo.api.process import Parameter
    from openeo.processes import process

    scale = Parameter.number("factor", description="multiplier")
    graph = {"mul": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"},
                                                             "y": {"from_parameter": "factor"}}, "result": True}}
    aggregator.save_user_defined_process("scale_by", graph, parameters=[
        Parameter.number("x", description="value"), scale])
    assert "scale_by" in [p["id"] for p in aggregator.list_user_defined_processes()]

    cube = dem(aggregator).apply(lambda x: process("scale_by", x=x, factor=2))
    cube.download(tmp_path / "scaled.tif", format="GTiff")
    dem(aggregator).download(tmp_path / "plain.tif", format="GTiff")
    np.testing.assert_array_equal(read(tmp_path / "scaled.tif"), 2 * read(tmp_path / "plain.tif"))
