"""Job ids and results URLs inside process graphs: found in callbacks too, rewritten for the backend that
runs the graph (without touching the user's graph), and back for the job documents a backend returns."""

from __future__ import annotations

import copy

import pytest

from aggregator.jobs import graphs, ids
from aggregator.jobs.ids import BackendJobRef, SplitJobRef
from aggregator.jobs.urls import JobUrls
from aggregator.routing import FederationNoBackend
from apicore import errors

ROOT = "http://aggregator.test/openeo/1.2"  # as the views pass it: no trailing slash
ROOTS = {"a": "http://a.test/openeo/1.2/", "b": "http://b.test/api/v1/"}
ON_A, ON_B = BackendJobRef("a", "job-a-1"), BackendJobRef("b", "4f9c2a7e-0d1b-4c3e-9a55-6b7c8d9e0f10")
SIGNED_B = "http://b.test/api/v1/jobs/4f9c/results/collection.json?expires=1900000000&signature=abc"
EXTERNAL = "https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a"


def results_url(ref: BackendJobRef, suffix: str = "") -> str:
    return f"{ROOT}/jobs/{ref.federated_id}/results{suffix}"


def user_graph() -> dict:
    """load_result of a job on a; load_stac of a job on b; a job on a read by URL three callbacks deep
    (a reducer inside a list inside an apply's context); an external STAC URL; a parameter."""
    nested = {"process_graph": {
        "inner": {"process_id": "apply", "arguments": {"data": {"from_parameter": "data"}, "process": {
            "process_graph": {"deep": {"process_id": "load_stac", "arguments": {
                "url": results_url(ON_A, "?partial=true")}, "result": True}}}}, "result": True}}}
    return {
        "r": {"process_id": "load_result", "arguments": {"id": ON_A.federated_id}},
        "s": {"process_id": "load_stac", "arguments": {"url": results_url(ON_B), "bands": ["B04"]}},
        "x": {"process_id": "load_stac", "arguments": {"url": EXTERNAL}},
        "p": {"process_id": "load_stac", "arguments": {"url": {"from_parameter": "url"}}},
        "m": {"process_id": "merge_cubes", "arguments": {"cube1": {"from_node": "r"}, "cube2": {"from_node": "s"},
                                                           "context": [nested]}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "m"}, "format": "GTiff"},
                 "result": True},
    }


def test_references_are_found_in_callbacks_and_name_their_nodes():
    found = graphs.references(user_graph(), ROOT, ROOTS)
    assert [(r.node, r.process_id, r.job, r.by_url) for r in found] == [
        ("r", "load_result", ON_A, False),
        ("s", "load_stac", ON_B, True),
        ("m/context/inner/process/deep", "load_stac", ON_A, True),
    ]
    assert graphs.required_backends(found) == {"a"}  # load_result reads jobs of the backend running the graph
    assert graphs.signed_urls_needed(found, "a") == [ON_B]
    assert graphs.signed_urls_needed(found, "b") == [ON_A]


def test_the_graph_for_the_owning_backend_gets_its_ids_and_urls():
    graph = user_graph()
    before = copy.deepcopy(graph)
    rewritten = graphs.for_backend(graph, "a", root=ROOT, backend_roots=ROOTS, signed_results={ON_B: SIGNED_B})
    assert graph == before  # the user's graph is not changed
    assert rewritten["r"]["arguments"] == {"id": "job-a-1"}
    assert rewritten["s"]["arguments"] == {"url": SIGNED_B, "bands": ["B04"]}  # b's job: its signed URL
    deep = rewritten["m"]["arguments"]["context"][0]["process_graph"]["inner"]["arguments"]["process"]
    assert deep["process_graph"]["deep"]["arguments"]["url"] == "http://a.test/openeo/1.2/jobs/job-a-1/results?partial=true"
    assert rewritten["x"] == before["x"] and rewritten["p"] == before["p"] and rewritten["save"] == before["save"]
    rewritten["m"]["arguments"]["context"][0]["process_graph"]["inner"]["arguments"]["data"]["x"] = 1
    assert graph == before  # nothing shared


def test_load_result_of_a_job_elsewhere_is_refused_with_the_way_out():
    with pytest.raises(FederationNoBackend) as caught:
        graphs.for_backend(user_graph(), "b", root=ROOT, backend_roots=ROOTS, signed_results={ON_A: "x"})
    message = caught.value.message
    assert "node 'r'" in message and "backend 'a'" in message and "runs on 'b'" in message and "load_stac" in message


def test_a_signed_url_the_caller_did_not_fetch_is_a_programming_error():
    with pytest.raises(ValueError, match="signed_urls_needed"):
        graphs.for_backend(user_graph(), "a", root=ROOT, backend_roots=ROOTS)


def test_unknown_jobs_in_a_graph_are_404s_naming_the_node():
    graph = {"r": {"process_id": "load_result", "arguments": {"id": "some-local-id"}}}
    with pytest.raises(errors.JobNotFound) as caught:
        graphs.references(graph, ROOT, ROOTS)
    assert "Node 'r'" in caught.value.message and "some-local-id" in caught.value.message
    gone = BackendJobRef("vito", "j-1").federated_id
    graph = {"outer": {"process_id": "apply", "arguments": {"process": {"process_graph": {
        "s": {"process_id": "load_stac", "arguments": {"url": f"{ROOT}/jobs/{gone}/results"}}}}}}}
    with pytest.raises(errors.JobNotFound) as caught:
        graphs.for_backend(graph, "a", root=ROOT, backend_roots=ROOTS)
    assert "Node 'outer/process/s'" in caught.value.message and "'vito'" in caught.value.message


def test_other_aggregator_urls_are_left_alone():
    item = f"{ROOT}/jobs/{ON_A.federated_id}/results/items/x.tif?expires=1&signature=2"
    graph = {"s": {"process_id": "load_stac", "arguments": {"url": item}},
             "c": {"process_id": "load_stac", "arguments": {"url": f"{ROOT}/collections/S2"}}}
    assert graphs.references(graph, ROOT, ROOTS) == []
    assert graphs.for_backend(graph, "a", root=ROOT, backend_roots=ROOTS) == graph


def test_split_jobs_are_resolved_by_the_caller():
    split = SplitJobRef("0123abcd").federated_id
    graph = {"r": {"process_id": "load_result", "arguments": {"id": split}}}
    with pytest.raises(errors.JobNotFound, match="split job"):
        graphs.references(graph, ROOT, ROOTS)
    resolved = graphs.for_backend(graph, "b", root=ROOT, backend_roots=ROOTS,
                                  resolve_split=lambda ref: ON_B if ref.record_id == "0123abcd" else None)
    assert resolved["r"]["arguments"]["id"] == ON_B.job_id


def test_a_graph_a_backend_returns_gets_federated_ids_back():
    urls = JobUrls.of(ROOT, "a", ROOTS["a"])
    sent = graphs.for_backend(user_graph(), "a", root=ROOT, backend_roots=ROOTS, signed_results={ON_B: SIGNED_B})
    shown = graphs.for_user(sent, urls)
    original = user_graph()
    assert shown["r"] == original["r"]  # the federated id again
    assert shown["m"] == original["m"]  # a's results URL, three callbacks deep, is the aggregator's again
    assert shown["s"]["arguments"]["url"] == SIGNED_B  # b's signed URL is not a's to translate
    assert graphs.for_user("not a graph", urls) == "not a graph"
    assert graphs.for_user({"broken": 1}, urls) == {"broken": 1}


def test_ids_and_urls_are_checked_against_the_current_backends():
    assert ids.owner_of(ON_A.federated_id, ROOTS) == "a"
    found = graphs.references({"r": {"process_id": "load_result", "arguments": {"id": ON_B.federated_id}}}, ROOT,
                              ROOTS)
    assert graphs.required_backends(found) == {"b"}
