"""Routing: which backend runs a graph, why, and what the error says when none can."""

from __future__ import annotations

import pytest

from aggregator.federation.backends import BackendConfig, ProcessRules
from aggregator.merging.collections import merge_collection_listings
from aggregator.merging.processes import merge_processes
from aggregator.routing import (FederationBackendUnavailable, FederationNoBackend, SplitPlan, analyse,
                                force_backend_of, plan_split, route)
from apicore import errors
from tests.aggregator.merging.conftest import AGGREGATOR, DEM, S2

T1 = {"west": 11.30, "south": 46.45, "east": 11.35, "north": 46.50}  # inside tile T1 of S2
T2 = {"west": 12.02, "south": 46.47, "east": 12.05, "north": 46.50}  # inside tile T2 only
S1 = {"id": "S1_GRD", "type": "Collection", "stac_version": "1.0.0", "description": "SAR", "license": "proprietary",
      "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [["2014-10-03", None]]}},
      "links": []}
LOAD_RESULT = {"id": "load_result", "description": "Loads batch job results.", "parameters": [
    {"name": "id", "description": "A job id or URL.", "schema": {"type": "string"}}],
    "returns": {"description": "A data cube.", "schema": {"type": "object", "subtype": "datacube"}}}


@pytest.fixture
def federation(real):
    """b1: our backend. b2 (weight 2): S2 on tile T1 from June on, and S1_GRD; no ndvi. b3: like b1.
    All offer load_result (which our backend does not)."""
    s2 = next(c for c in real.collections["collections"] if c["id"] == S2)
    b2_s2 = {**s2, "extent": {"spatial": {"bbox": [[11.2780213, 46.4324403, 11.4496579, 46.5509823]]},
                              "temporal": {"interval": [["2022-06-01T00:00:00Z", "2022-09-15T10:20:21Z"]]}}}
    collections = merge_collection_listings(
        {"b1": real.collections, "b2": {"collections": [b2_s2, S1]}, "b3": real.collections}, root_url=AGGREGATOR)
    offered = {**real.processes, "processes": [*real.processes["processes"], LOAD_RESULT]}
    processes = merge_processes({"b1": offered, "b2": offered, "b3": offered},
                                root_url=AGGREGATOR, rules={"b2": ProcessRules(deny=["ndvi"])})
    backends = [BackendConfig(id="b1", url="http://b1.test/"), BackendConfig(id="b2", url="http://b2.test/", weight=2),
                BackendConfig(id="b3", url="http://b3.test/")]

    def decide(graph, *, offline=(), load=None, split=False, **options):
        call = plan_split if split else route
        return call(analyse(graph), backends=backends, collections=collections.index,
                    processes=processes.by_backend, available=lambda b: b not in offline, load=load, **options)

    return decide


def graph(*loads, extra=()) -> dict:
    """load_collection nodes (collection id, spatial extent, temporal extent), optional processes, a save."""
    nodes = {f"load{i}": {"process_id": "load_collection", "arguments": {"id": cid, "spatial_extent": bbox,
                                                                          "temporal_extent": interval}}
             for i, (cid, bbox, interval) in enumerate(loads, 1)}
    for process_id in extra:
        nodes[process_id] = {"process_id": process_id, "arguments": {"data": {"from_node": "load1"}}}
    nodes["save"] = {"process_id": "save_result", "arguments": {"data": {"from_node": "load1"}, "format": "GTiff"},
                     "result": True}
    return nodes


def test_a_complete_cover_beats_a_partial_one_then_weight_then_load(federation):
    may_in_t1 = graph((S2, T1, ["2022-05-01", "2022-06-15"]))  # b2 has S2 from June on only
    decision = federation(may_in_t1, load={"b1": 5, "b3": 1})
    assert decision.backend_id == "b3"
    assert decision.candidates == ["b3", "b1", "b2"]
    assert decision.rejected == {}
    assert decision.reason == ("b3 offers collection(s) SENTINEL2_L2A_DEMO and all 2 process(es) of the graph, "
                               "covers the requested extent; weight 1, load 1: first of 3 candidate(s) "
                               "(other candidates: b1, b2)")
    july_in_t1 = graph((S2, T1, ["2022-07-01", "2022-08-01"]))
    assert federation(july_in_t1, load={"b2": 100}).backend_id == "b2"  # covers it, weight 2
    assert federation(july_in_t1, offline=["b2"]).rejected == {"b2": "offline"}


def test_a_backend_whose_extent_misses_the_request_is_rejected_with_the_reason(federation):
    decision = federation(graph((S2, T2, None)))
    assert (decision.backend_id, decision.candidates) == ("b1", ["b1", "b3"])
    assert decision.rejected == {"b2": "its SENTINEL2_L2A_DEMO ([11.278, 46.4324, 11.4497, 46.551]) does not reach "
                                       "the requested bbox [12.02, 46.47, 12.05, 46.5] (node load1)"}
    utm_t2 = {"west": 271800, "south": 5151400, "east": 272200, "north": 5151900, "crs": 32633}
    assert federation(graph((S2, utm_t2, None))).candidates == ["b1", "b3"]


def test_a_partial_cover_still_routes_but_says_so(federation):
    decision = federation(graph((S2, T1, ["2022-09-01", "2022-12-01"])))  # data ends 2022-09-15 everywhere
    assert decision.candidates == ["b2", "b1", "b3"]
    assert "covers the requested extent only partly" in decision.reason


def test_nothing_in_the_requested_time_names_every_backend(federation):
    with pytest.raises(FederationNoBackend) as raised:
        federation(graph((DEM, None, ["2021-01-01", "2021-02-01"])))
    error = raised.value
    assert (error.status, error.code) == (400, "FederationNoBackend")
    dem_time = ("its DEM_DEMO (2022-01-01T00:00:00Z to 2022-12-31T23:59:59Z) has nothing in the requested time "
                "2021-01-01 to 2021-02-01 (node load1)")
    assert error.message == (
        "No backend of the federation can run this process graph: collection DEM_DEMO is on b1, b3. Per backend: "
        f"b1: {dem_time}; b2: does not offer collection(s) DEM_DEMO; b3: {dem_time}. Use collections and processes "
        "one backend offers (federation:backends in GET /collections and GET /processes), or change the extents.")


def test_the_error_names_what_is_missing_where(federation):
    with pytest.raises(FederationNoBackend) as raised:
        federation(graph(("S1_GRD", None, None), extra=["ndvi"]), offline=["b3"])
    assert raised.value.message == (
        "No backend of the federation can run this process graph: collection S1_GRD is on b2 only; process ndvi is "
        "on b1, b3; backend b3 is offline. Per backend: b1: does not offer collection(s) S1_GRD; b2: does not offer "
        "process(es) ndvi; b3: offline; does not offer collection(s) S1_GRD. Use collections and processes one "
        "backend offers (federation:backends in GET /collections and GET /processes), or change the extents.")
    assert raised.value.split_plan is None  # one collection: nothing to split


def test_collections_on_different_backends_get_a_split_plan(federation):
    with pytest.raises(FederationNoBackend) as raised:
        federation(graph((DEM, None, None), ("S1_GRD", None, None)), load={"b1": 3})
    assert "collection DEM_DEMO is on b1, b3; collection S1_GRD is on b2 only" in raised.value.message
    plan = SplitPlan(primary="b2", parts={"load1": "b3", "load2": "b2"},
                     options={"load1": ["b3", "b1"], "load2": ["b2"]})  # b1 is busier than b3
    assert raised.value.split_plan == plan
    two = graph((DEM, None, None), ("S1_GRD", None, None))
    assert federation(two, load={"b1": 3}, split=True) == plan
    assert federation(two, offline=["b2"], split=True) is None  # S1_GRD cannot be loaded anywhere
    # b2 lacks ndvi: b1 runs the rest
    assert federation(graph((DEM, None, None), ("S1_GRD", None, None), extra=["ndvi"]), split=True) == SplitPlan(
        primary="b1", parts={"load1": "b1", "load2": "b2"}, options={"load1": ["b1", "b3"], "load2": ["b2"]})


def test_unknown_collections_and_processes_and_offline_backends_have_their_own_errors(federation):
    with pytest.raises(errors.CollectionNotFound) as raised:
        federation(graph(("S3_OLCI", None, None)))
    assert (raised.value.status, raised.value.message) == (
        404, "Collection 'S3_OLCI' does not exist on any backend of the federation (see GET /collections).")
    with pytest.raises(errors.ProcessUnsupported) as raised:
        federation(graph((S2, None, None), extra=["sar_backscatter"]))
    assert (raised.value.status, raised.value.message) == (
        400, "Process 'sar_backscatter' is not offered by any backend of the federation (see GET /processes).")
    with pytest.raises(FederationBackendUnavailable, match="Only b1, b3 could run this process graph, and they are"):
        federation(graph((DEM, None, None)), offline=["b1", "b3"])
    with pytest.raises(FederationBackendUnavailable) as raised:
        federation(graph(("S1_GRD", None, None)), offline=["b2"])
    assert (raised.value.status, raised.value.code, raised.value.message) == (
        503, "FederationBackendUnavailable", "Only b2 could run this process graph, and it is offline (see "
                                             "`federation` in GET /). Try again later.")


def test_a_backend_that_did_not_list_its_collections_or_processes_is_not_a_candidate(real):
    collections = merge_collection_listings({"b1": real.collections}, root_url=AGGREGATOR, missing=["b2"])
    processes = merge_processes({"b1": real.processes, "b2": real.processes}, root_url=AGGREGATOR)
    backends = [BackendConfig(id="b1", url="http://b1.test/"), BackendConfig(id="b2", url="http://b2.test/")]
    decision = route(analyse(graph((S2, None, None))), backends=backends, collections=collections.index,
                     processes=processes.by_backend, available=lambda b: True)
    assert (decision.backend_id, decision.rejected) == (
        "b1", {"b2": "its collections are unknown (its GET /collections did not answer)"})
    with pytest.raises(FederationBackendUnavailable, match="Collection 'S1_GRD' is on no backend that answered; "
                                                           "b2 did not. Try again later."):
        route(analyse(graph(("S1_GRD", None, None))), backends=backends, collections=collections.index,
              processes=processes.by_backend, available=lambda b: True)
    processes = merge_processes({"b1": real.processes}, root_url=AGGREGATOR, missing=["b2"])
    with pytest.raises(FederationBackendUnavailable, match="Process 'sar_backscatter' is offered by no backend "
                                                           "that answered; b2 did not. Try again later."):
        route(analyse(graph((S2, None, None), extra=["sar_backscatter"])), backends=backends,
              collections=collections.index, processes=processes.by_backend, available=lambda b: True)


def test_load_result_runs_where_the_job_is(federation):
    reads_job = {**graph((S2, None, None)), "r": {"process_id": "load_result", "arguments": {"id": "agg-j1"}}}
    decision = federation(reads_job, job_backend={"agg-j1": "b3"}.get)
    assert (decision.backend_id, decision.candidates) == ("b3", ["b3"])
    assert decision.rejected["b2"] == "load_result reads job agg-j1, whose results are on b3"


def test_force_backend_from_job_options_or_top_level():
    assert force_backend_of({"process": {}, "job_options": {"federation:force-backend": "b2"}}) == "b2"
    assert force_backend_of({"process": {}, "federation:force-backend": "b2"}) == "b2"
    assert force_backend_of({"process": {}, "federation:force-backend": "b2", "job_options": {
        "federation:force-backend": "b2"}}) == "b2"
    assert force_backend_of({"process": {}, "job_options": None}) is None
    with pytest.raises(FederationNoBackend, match="federation:force-backend is given twice with different backends "
                                                  r"\(b1, b2\): give it once."):
        force_backend_of({"federation:force-backend": "b1", "job_options": {"federation:force-backend": "b2"}})
    with pytest.raises(FederationNoBackend, match="must be a backend id"):
        force_backend_of({"federation:force-backend": ["b1"]})


def test_a_forced_backend_is_used_even_when_it_lacks_something(federation):
    decision = federation(graph((DEM, None, None)), force_backend="b2")
    assert decision.backend_id == "b2"
    assert decision.reason == ("b2 is named by federation:force-backend (although it does not offer collection(s) "
                               "DEM_DEMO)")
    assert decision.rejected == {"b1": "federation:force-backend names b2", "b3": "federation:force-backend names b2"}
    with pytest.raises(FederationNoBackend) as raised:
        federation(graph((DEM, None, None)), force_backend="b9")
    assert raised.value.message == ("federation:force-backend names 'b9', which is not a backend of this federation; "
                                    "its backends are b1, b2, b3.")
    with pytest.raises(FederationBackendUnavailable, match="Backend 'b2', named by federation:force-backend, is "
                                                           "offline. Try again later."):
        federation(graph((DEM, None, None)), force_backend="b2", offline=["b2"])
