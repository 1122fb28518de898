"""What a process graph needs: collections with their extents, processes, UDPs, URLs."""

from __future__ import annotations

from datetime import datetime, timezone

import openeo
import pytest

from aggregator.graph_needs import analyse
from apicore import errors
from tests.aggregator.merging.conftest import S2


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_a_graph_built_by_the_python_client(live_server):
    connection = openeo.connect(live_server.url)
    cube = connection.load_collection(S2, spatial_extent={"west": 11.3, "south": 46.45, "east": 11.35, "north": 46.5},
                                      temporal_extent=["2022-05-01", "2022-06-01"], bands=["B04", "B08"])
    graph = cube.ndvi().reduce_dimension("t", reducer="mean").save_result("GTiff").flat_graph()
    needs = analyse(graph)
    assert needs.collections == {S2}
    [load] = needs.loads
    assert (load.node, load.bbox, load.interval, load.top_level) == (
        "loadcollection1", (11.3, 46.45, 11.35, 46.5), (utc(2022, 5, 1), utc(2022, 6, 1)), True)
    assert needs.processes == {"load_collection", "ndvi", "reduce_dimension", "mean", "save_result"}
    assert (needs.udps, needs.urls, needs.result_jobs, needs.unresolved) == (set(), [], [], [])


def test_callbacks_udps_namespaces_and_urls():
    udps = {
        "masked": {"lc": {"process_id": "load_collection", "arguments": {"id": "DEM_DEMO"}},
                   "inner": {"process_id": "masked", "arguments": {}},  # recursive: walked once
                   "m": {"process_id": "mask", "arguments": {"data": {"from_node": "lc"}}, "result": True}},
        "scaled": {"x": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": 2},
                         "result": True}},
    }
    graph = {
        "lc": {"process_id": "load_collection", "arguments": {"id": {"from_parameter": "collection"}}},
        "u": {"process_id": "masked", "arguments": {}},
        "a": {"process_id": "apply", "arguments": {"data": {"from_node": "u"}, "process": {"process_graph": {
            "s": {"process_id": "scaled", "namespace": "user", "arguments": {"x": {"from_parameter": "x"}}},
            "abs": {"process_id": "absolute", "namespace": "backend", "arguments": {"x": {"from_node": "s"}},
                    "result": True}}}}},
        "stac": {"process_id": "load_stac", "arguments": {"url": "https://stac.example/collections/x"}},
        "job": {"process_id": "load_result", "arguments": {"id": "b2-j-123"}},
        "signed": {"process_id": "load_result", "arguments": {"id": "https://b1.test/jobs/j1/results?sig=x"}},
        "remote": {"process_id": "fancy", "namespace": "https://processes.example/fancy.json", "arguments": {}},
        "m": {"process_id": "merge_cubes", "arguments": {}, "result": True},
    }
    needs = analyse(graph, resolve_udp=udps.get)
    assert needs.udps == {"masked", "scaled"}
    assert needs.processes == {"load_collection", "mask", "apply", "multiply", "absolute", "load_stac",
                               "load_result", "merge_cubes"}
    assert [(load.node, load.collection_id, load.top_level) for load in needs.loads] == [
        ("u>masked:lc", "DEM_DEMO", False)]
    assert needs.unresolved == ["load_collection at node lc: its collection id is not given literally"]
    assert needs.urls == ["https://stac.example/collections/x", "https://b1.test/jobs/j1/results?sig=x"]
    assert needs.result_jobs == ["b2-j-123"]
    assert needs.remote_processes == {("fancy", "https://processes.example/fancy.json")}


def test_an_unknown_user_process_is_an_error():
    graph = {"u": {"process_id": "nope", "namespace": "user", "arguments": {}, "result": True}}
    with pytest.raises(errors.ProcessGraphNotFound) as raised:
        analyse(graph, resolve_udp=lambda _: None)
    assert (raised.value.status, raised.value.message) == (404, "User-defined process 'nope' does not exist.")


@pytest.mark.parametrize("graph", [[], {"a": 5}, {"a": {"arguments": {}}}, {}])
def test_a_malformed_graph_is_a_400(graph):
    with pytest.raises(errors.ProcessGraphInvalid) as raised:
        analyse(graph)
    assert raised.value.status == 400


def test_extents_in_other_crs_and_as_geojson_become_wgs84_bboxes():
    def load(spatial_extent, temporal_extent=None):
        graph = {"lc": {"process_id": "load_collection", "arguments": {
            "id": S2, "spatial_extent": spatial_extent, "temporal_extent": temporal_extent}, "result": True}}
        return analyse(graph).loads[0]

    utm = load({"west": 676642.7, "south": 5146617.9, "east": 680317.4, "north": 5152286.4, "crs": 32632})
    assert utm.bbox == pytest.approx((11.3, 46.45, 11.35, 46.5), abs=2e-3)
    assert load({"west": 1, "south": 2, "east": 3, "north": 4, "crs": "EPSG:4326"}).bbox == (1, 2, 3, 4)
    polygon = {"type": "Polygon", "coordinates": [[[11.3, 46.45], [11.35, 46.45], [11.32, 46.5], [11.3, 46.45]]]}
    collection = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": polygon}]}
    assert load(collection).bbox == (11.3, 46.45, 11.35, 46.5)
    assert load({"west": 1, "south": 2, "east": 3, "north": 4, "crs": "not a crs"}).bbox is None
    assert load({"from_parameter": "aoi"}).bbox is None
    assert load(None, ["2022", None]).interval == (utc(2022, 1, 1), None)
    assert load(None, ["2022-06-01T12:00:00+02:00", "2022-07-01"]).interval == (utc(2022, 6, 1, 10), utc(2022, 7, 1))
    assert load(None, ["yesterday", None]).interval is None
