"""The part graphs and the primary graph of a split, from graphs built with the real openEO client and
plans made by routing over our backend's real collection and process documents (A: S2 + DEM, B: S1 + DEM)."""

from __future__ import annotations

import copy

import pytest
from openeo.rest.datacube import DataCube

from aggregator.federation.backends import BackendConfig
from aggregator.merging.collections import merge_collection_listings
from aggregator.merging.processes import merge_processes
from aggregator.routing import FederationNoBackend, SplitPlan, analyse, plan_split, route
from aggregator.split import PART_FORMAT, split_graphs
from backend.demo import DEMO_DEM_COLLECTION as DEM, DEMO_S1_COLLECTION as S1, DEMO_S2_COLLECTION as S2

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]
URL = "http://127.0.0.1:9/openeo/1.2/jobs/x/results/collection.json?expires=1&signature=abc"


@pytest.fixture
def federation(real):
    """Routing and split planning over A (S2 + DEM) and B (S1 + DEM), both with our processes."""
    def only(*ids):
        return {**real.collections, "collections": [c for c in real.collections["collections"] if c["id"] in ids]}

    collections = merge_collection_listings({"A": only(S2, DEM), "B": only(S1, DEM)}, root_url="http://agg.test/")
    processes = merge_processes({"A": real.processes, "B": real.processes}, root_url="http://agg.test/")
    backends = [BackendConfig(id="A", url="http://a.test/"), BackendConfig(id="B", url="http://b.test/")]
    options = dict(backends=backends, collections=collections.index, processes=processes.by_backend,
                   available=lambda b: True)
    return lambda graph, call: call(analyse(graph), **options)


def s1_and_s2_merged():
    """S2 NDVI averaged over June, merged with S1 VH averaged over June: the client's flat graph."""
    s2 = DataCube.load_collection(S2, spatial_extent=AREA, temporal_extent=JUNE, bands=["B04", "B08"],
                                  fetch_metadata=False)
    ndvi = s2.ndvi(nir="B08", red="B04").reduce_dimension("t", "mean")
    s1 = DataCube.load_collection(S1, spatial_extent=AREA, temporal_extent=JUNE, bands=["VH"], fetch_metadata=False,
                                  properties={"sat:orbit_state": lambda value: value == "descending"})
    vh = s1.reduce_dimension("t", "mean")
    return ndvi.merge_cubes(vh).save_result("GTiff").flat_graph()


def test_s1_and_s2_merged_splits_into_an_s1_part_on_b_and_the_rest_on_a(federation):
    graph = s1_and_s2_merged()
    with pytest.raises(FederationNoBackend) as raised:
        federation(graph, route)
    plan = raised.value.split_plan
    assert plan == SplitPlan(primary="A", parts={"loadcollection1": "A", "loadcollection2": "B"},
                             options={"loadcollection1": ["A"], "loadcollection2": ["B"]})
    assert federation(graph, plan_split) == plan
    original = copy.deepcopy(graph)

    split = split_graphs(graph, plan)
    assert split.primary == "A" and [(p.node, p.collection, p.backend_id) for p in split.parts] == \
        [("loadcollection2", S1, "B")]
    (part,) = split.parts
    # the part: the user's load_collection as written (extents, bands, property filter) saved as GeoTIFF
    assert part.process_graph == {
        "load": {"process_id": "load_collection", "arguments": graph["loadcollection2"]["arguments"]},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": PART_FORMAT},
                 "result": True}}
    assert part.process_graph["load"]["arguments"]["properties"]["sat:orbit_state"]["process_graph"]
    # the primary: the same graph with the S1 load read from the part's results
    primary = split.primary_graph({"loadcollection2": URL})
    assert primary["loadcollection2"] == {"process_id": "load_stac", "arguments": {
        "url": URL, "spatial_extent": AREA, "temporal_extent": JUNE}}
    assert {k: v for k, v in primary.items() if k != "loadcollection2"} == \
           {k: v for k, v in original.items() if k != "loadcollection2"}
    assert graph == original  # nothing of the user's graph changed
    assert analyse(primary).collections == {S2} and "load_stac" in analyse(primary).processes
    assert federation(primary, route).candidates == ["A"]  # A runs the primary graph on its own
    assert "loadcollection2 (SENTINEL1_GRD_DEMO) on B" in split.describe()


def test_ndvi_masked_by_a_dem_mask_needs_no_split_when_the_dem_is_on_both(federation):
    s2 = DataCube.load_collection(S2, spatial_extent=AREA, temporal_extent=JUNE, bands=["B04", "B08"],
                                  fetch_metadata=False)
    dem = DataCube.load_collection(DEM, spatial_extent=AREA, fetch_metadata=False)
    mask = dem.reduce_dimension("bands", "max") > 600
    graph = s2.ndvi(nir="B08", red="B04").mask(mask).save_result("GTiff").flat_graph()
    decision = federation(graph, route)
    assert decision.backend_id == "A" and decision.candidates == ["A"]
    assert "B" in decision.rejected and S2 in decision.rejected["B"]


def test_a_load_with_arguments_from_other_nodes_cannot_be_shipped(federation):
    graph = s1_and_s2_merged()
    graph["loadcollection2"]["arguments"]["temporal_extent"] = {"from_parameter": "dates"}
    plan = SplitPlan("A", {"loadcollection1": "A", "loadcollection2": "B"}, {})
    with pytest.raises(FederationNoBackend) as raised:
        split_graphs(graph, plan)
    assert "node 'loadcollection2'" in raised.value.message and "parameter 'dates'" in raised.value.message
    assert raised.value.status == 400


def test_every_load_on_the_primary_leaves_nothing_to_split(federation):
    graph = s1_and_s2_merged()
    split = split_graphs(graph, SplitPlan("A", {"loadcollection1": "A", "loadcollection2": "A"}, {}))
    assert split.parts == () and split.primary_graph({}) == graph


def test_a_part_that_is_the_result_node_keeps_the_result_flag():
    graph = {"s1": {"process_id": "load_collection", "arguments": {"id": S1, "spatial_extent": AREA,
                                                                    "temporal_extent": JUNE}, "result": True},
             "s2": {"process_id": "load_collection", "arguments": {"id": S2, "spatial_extent": AREA,
                                                                    "temporal_extent": JUNE}}}
    primary = split_graphs(graph, SplitPlan("A", {"s1": "B", "s2": "A"}, {})).primary_graph({"s1": URL})
    assert primary["s1"] == {"process_id": "load_stac", "result": True, "arguments": {
        "url": URL, "spatial_extent": AREA, "temporal_extent": JUNE}}
