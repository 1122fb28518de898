"""Collections, processes, file formats and UDPs through the aggregator's app, over fake backends that
behave or misbehave: merged answers, federation:missing, describe asked only of the holders, UDPs with
every backend down."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.aggregator.app.conftest import AggregatorServer, settings_for, wait_until
from tests.support.fake_backends import FakeBackend, HangingServer, RefusingPort

SHARED = "SHARED"


def collection(collection_id: str, bands: list[str]) -> dict:
    return {"stac_version": "1.0.0", "type": "Collection", "id": collection_id, "title": collection_id,
            "description": "test", "license": "proprietary",
            "extent": {"spatial": {"bbox": [[0, 0, 10, 10]]}, "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}},
            "cube:dimensions": {"bands": {"type": "bands", "values": bands}},
            "summaries": {"eo:bands": [{"name": band} for band in bands]}, "links": []}


@pytest.fixture
def stocked(fakes):
    """b1 has ONE and SHARED (bands B1, B2), b2 has TWO and SHARED (bands B2, B3)."""
    for backend_id, own, bands in (("b1", "ONE", ["B1", "B2"]), ("b2", "TWO", ["B2", "B3"])):
        fake = fakes[backend_id]
        documents = {own: collection(own, bands), SHARED: collection(SHARED, bands)}
        fake.documents["collections"] = {"collections": list(documents.values()), "links": []}
        for collection_id, document in documents.items():
            fake.documents[f"collections/{collection_id}"] = document
        fake.documents["processes"] = {"processes": [{"id": "add", "parameters": [], "returns": {}},
                                                     {"id": f"only_{backend_id}", "parameters": [], "returns": {}}],
                                       "links": []}
    return fakes


def test_collections_are_merged_with_their_backends(aggregator, stocked):
    listing = requests.get(f"{aggregator.url}/collections", timeout=10).json()
    by_id = {c["id"]: c for c in listing["collections"]}
    assert sorted(by_id) == ["ONE", SHARED, "TWO"]
    assert by_id["ONE"]["federation:backends"] == ["b1"] and by_id["TWO"]["federation:backends"] == ["b2"]
    assert by_id[SHARED]["federation:backends"] == ["b1", "b2"]
    assert by_id[SHARED]["summaries"]["federation:backends"] == ["b1", "b2"]
    assert "federation:missing" not in listing
    page = requests.get(f"{aggregator.url}/collections", params={"limit": 2}, timeout=10).json()
    assert [c["id"] for c in page["collections"]] == ["ONE", SHARED]
    assert any(link["rel"] == "next" for link in page["links"])


def test_a_collection_is_described_by_the_backends_that_have_it(aggregator, stocked):
    one = requests.get(f"{aggregator.url}/collections/ONE", timeout=10).json()
    assert one["federation:backends"] == ["b1"] and one["cube:dimensions"]["bands"]["values"] == ["B1", "B2"]
    assert stocked["b2"].requests["collections/ONE"] == 0  # never asked of a backend without it
    shared = requests.get(f"{aggregator.url}/collections/{SHARED}", timeout=10).json()
    assert shared["cube:dimensions"]["bands"]["values"] == ["B1", "B2", "B3"]  # the union
    # a band on only some of the backends says which
    assert {band["name"]: band.get("federation:backends") for band in shared["summaries"]["eo:bands"]} == {
        "B1": ["b1"], "B2": None, "B3": ["b2"]}
    unknown = requests.get(f"{aggregator.url}/collections/NOPE", timeout=10)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "CollectionNotFound")
    assert "does not exist on any backend" in unknown.json()["message"]


def test_a_backend_error_on_describe_keeps_its_status_and_names_the_backend(aggregator, stocked):
    del stocked["b2"].documents["collections/TWO"]
    wait_until(lambda: requests.get(f"{aggregator.url}/collections", timeout=10).status_code == 200)
    response = requests.get(f"{aggregator.url}/collections/TWO", timeout=10)
    assert response.status_code == 404 and response.json()["code"] == "NotFound"
    assert response.json()["message"].startswith("Backend 'b2': ")


def test_processes_file_formats_and_udf_runtimes_are_merged(aggregator, stocked):
    processes = requests.get(f"{aggregator.url}/processes", timeout=10).json()
    by_id = {p["id"]: p for p in processes["processes"]}
    assert sorted(by_id) == ["add", "only_b1", "only_b2"]
    assert "federation:backends" not in by_id["add"]  # offered by every backend
    assert by_id["only_b1"]["federation:backends"] == ["b1"]
    formats = requests.get(f"{aggregator.url}/file_formats", timeout=10).json()
    assert list(formats["output"]) == ["GTiff"] and formats["input"] == {}
    assert requests.get(f"{aggregator.url}/udf_runtimes", timeout=10).json() == {}  # 404 at both: none


def test_udps_live_in_the_aggregator_and_work_with_every_backend_down(aggregator, stocked):
    headers = aggregator.auth_headers(*aggregator.new_user())
    requests.get(f"{aggregator.url}/processes", timeout=10)  # known predefined processes
    spec = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}},
            "summary": "three"}
    taken = requests.put(f"{aggregator.url}/process_graphs/add", json=spec, headers=headers, timeout=10)
    assert (taken.status_code, taken.json()["code"]) == (400, "PredefinedProcessExists")
    for fake in stocked.values():
        fake.stop()
    assert requests.put(f"{aggregator.url}/process_graphs/three", json=spec, headers=headers, timeout=10).status_code == 200
    listing = requests.get(f"{aggregator.url}/process_graphs", headers=headers, timeout=10).json()
    assert [(p["id"], p["summary"]) for p in listing["processes"]] == [("three", "three")]
    stored = requests.get(f"{aggregator.url}/process_graphs/three", headers=headers, timeout=10).json()
    assert stored["process_graph"] == spec["process_graph"]
    assert requests.delete(f"{aggregator.url}/process_graphs/three", headers=headers, timeout=10).status_code == 204
    assert requests.get(f"{aggregator.url}/process_graphs/three", headers=headers, timeout=10).status_code == 404


@pytest.mark.parametrize("fault", ["refusing", "hanging", "garbage", "error_500"])
def test_a_misbehaving_backend_lands_in_federation_missing_without_blocking(fault, stocked, tmp_path):
    with RefusingPort() as refusing, HangingServer() as hanging, FakeBackend("bad") as garbage, \
            FakeBackend("bad") as failing:
        garbage.behaviour = "invalid_json"
        failing.behaviour = "html_500"
        bad_url = {"refusing": refusing.url, "hanging": hanging.url, "garbage": garbage.url,
                   "error_500": failing.url}[fault]
        backends = {"b1": stocked["b1"].url, "b2": stocked["b2"].url, "bad": bad_url}
        server = AggregatorServer(settings_for(tmp_path, backends))
        try:
            for path in ("collections", "processes", "file_formats"):
                started = time.monotonic()
                document = requests.get(f"{server.url}/{path}", timeout=30).json()
                assert time.monotonic() - started < 3.0, path  # the fan-out deadline is 1.5 s here
                assert document["federation:missing"] == ["bad"], path
            ids = [c["id"] for c in requests.get(f"{server.url}/collections", timeout=30).json()["collections"]]
            assert ids == ["ONE", SHARED, "TWO"]
            federation = wait_until(lambda: (f := requests.get(f"{server.url}/", timeout=10).json()["federation"])
                                    ["bad"].get("status") == "offline" and f)
            assert federation["b1"]["status"] == federation["b2"]["status"] == "online"
            assert federation["bad"]["last_successful_check"] is None
        finally:
            server.stop()


class PairedFake(FakeBackend):
    """Answers /processes and /file_formats only when both requests are in flight at once (a barrier):
    a federation that asks for them one after the other sees both fail after the barrier's timeout."""

    def __init__(self, backend_id: str):
        self.barrier = threading.Barrier(2, timeout=3)
        super().__init__(backend_id)

    def answer(self, method, target, headers, body, client_port):
        if target.rstrip("/").endswith(("/processes", "/file_formats")):
            try:
                self.barrier.wait()
            except threading.BrokenBarrierError:
                return 503, [("Content-Type", "application/json")], b'{"code": "Unpaired", "message": "alone"}'
        return super().answer(method, target, headers, body, client_port)


def test_processes_and_file_formats_are_fetched_in_parallel(tmp_path):
    # /processes' version covers /file_formats too: fetched one after the other (uncached), the answer
    # waited twice for the slowest backend.
    with PairedFake("p1") as one, PairedFake("p2") as two:
        server = AggregatorServer(settings_for(tmp_path, {"p1": one.url, "p2": two.url}, fanout_deadline=8.0,
                                               metadata_timeout=8.0))
        try:
            document = requests.get(f"{server.url}/processes", timeout=30).json()
            assert "federation:missing" not in document, document
            assert [p["id"] for p in document["processes"]] == ["add"]
            assert (one.requests["processes"], one.requests["file_formats"]) == (1, 1)
        finally:
            server.stop()


def test_only_the_latest_merged_and_serialised_listing_is_kept(stocked, tmp_path):
    # Every metadata refresh is a new version: old merged listings and their serialisations were kept (up to
    # 64 and 256 of them), hundreds of MB per worker with 3 x 300 collections.
    backends = {b: fake.url for b, fake in stocked.items()}
    server = AggregatorServer(settings_for(tmp_path, backends, metadata_cache_ttl=0, metadata_cache_max_stale=0))
    server.parts.metadata.reuse = 0  # every request fans out anew: a new version each time
    try:
        for _ in range(4):
            assert requests.get(f"{server.url}/collections", timeout=30).status_code == 200
        assert stocked["b1"].requests["collections"] >= 4
        merged = [slot for slot in server.parts.metadata._merged if slot[0] == "collections"]
        assert len(merged) == 1
        serialised = [slot for slot in server.app.extensions["frozen_json_versions"] if slot[0] == "collections"]
        assert len(serialised) == 1
    finally:
        server.stop()


def test_unchanged_answers_keep_the_merged_listing_and_a_changed_one_is_merged_anew(stocked, tmp_path):
    """Uncached, every request fetches from the backends again; byte-identical answers are not parsed or
    merged again (the same merged object serves), a changed answer shows at once."""
    backends = {b: fake.url for b, fake in stocked.items()}
    server = AggregatorServer(settings_for(tmp_path, backends, metadata_cache_ttl=0, metadata_cache_max_stale=0))
    server.parts.metadata.reuse = 0
    root = f"{server.url}/"
    try:
        first = requests.get(f"{server.url}/collections", timeout=30).json()
        merged = server.parts.metadata.collections(root)
        assert requests.get(f"{server.url}/collections", timeout=30).json() == first
        assert stocked["b1"].requests["collections"] >= 3  # fetched anew each time
        assert server.parts.metadata.collections(root) is merged  # nothing merged again
        listing = stocked["b2"].documents["collections"]
        stocked["b2"].documents["collections"] = {**listing, "collections": [
            *listing["collections"], collection("THREE", ["B9"])]}
        after = requests.get(f"{server.url}/collections", timeout=30).json()
        assert sorted(c["id"] for c in after["collections"]) == ["ONE", SHARED, "THREE", "TWO"]
        assert server.parts.metadata.collections(root) is not merged
    finally:
        server.stop()


def test_concurrent_requests_share_one_fan_out(stocked, tmp_path):
    # Uncached, each of N concurrent requests fanned out (and merged) on its own.
    backends = {b: fake.url for b, fake in stocked.items()}
    server = AggregatorServer(settings_for(tmp_path, backends, metadata_cache_ttl=0, metadata_cache_max_stale=0))
    server.parts.metadata.reuse = 60  # no expiry during the test: only concurrency matters
    stocked["b1"].delay = 0.3  # the requests arrive while the first fan-out waits for b1
    try:
        barrier = threading.Barrier(6)
        answers = []

        def get():
            barrier.wait()
            answers.append(requests.get(f"{server.url}/collections", timeout=30).json())

        threads = [threading.Thread(target=get) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [len(a["collections"]) for a in answers] == [3] * 6
        assert (stocked["b1"].requests["collections"], stocked["b2"].requests["collections"]) == (1, 1)
    finally:
        server.stop()


def test_a_flapping_backend_never_breaks_an_answer(stocked, tmp_path):
    """b2 goes down and up every 0.3 s while clients list collections: every answer is complete for the
    backends it names and lists b2 as missing whenever its collections are absent; no error, no stall."""
    server = AggregatorServer(settings_for(tmp_path, {"b1": stocked["b1"].url, "b2": stocked["b2"].url}))
    flapping, stop = stocked["b2"], threading.Event()

    def flap():
        while not stop.wait(0.3):
            flapping.stop()
            if stop.wait(0.3):
                break
            flapping.start()

    flapper = threading.Thread(target=flap, daemon=True)
    try:
        flapper.start()
        seen_missing = seen_complete = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = requests.get(f"{server.url}/collections", timeout=30)
            assert time.monotonic() - started < 3.0
            assert response.status_code == 200, response.text
            document = response.json()
            ids = sorted(c["id"] for c in document["collections"])
            if document.get("federation:missing"):
                assert document["federation:missing"] == ["b2"] and "TWO" not in ids
                seen_missing += 1
            else:
                assert ids == ["ONE", SHARED, "TWO"]
                seen_complete += 1
        assert seen_complete > 0  # answers with b2 are served too (from its cache while it is down, or live)
    finally:
        stop.set()
        flapper.join(5)
        if not flapping.running:
            flapping.start()
        server.stop()


WRONG_SHAPES = {  # what a misbehaving backend may answer with 200 and valid JSON
    "scalars": {"collections": {"collections": "ONE", "links": 5}, "processes": {"processes": 5, "links": 5},
                "file_formats": {"input": 5, "output": ["GTiff"]}},
    "objects": {"collections": {"collections": {"id": "BAD"}}, "processes": {"processes": {"id": "bad"}},
                "file_formats": {"input": [], "output": "GTiff"}},
}


@pytest.mark.parametrize("shape", WRONG_SHAPES)
def test_a_listing_of_the_wrong_shape_makes_its_backend_missing(shape, stocked, tmp_path):
    # {"processes": 5} broke GET /processes with a 500 (TypeError in the merge); {"collections": "ONE"} or an
    # output list were taken as "this backend offers nothing": an incomplete answer without federation:missing.
    with FakeBackend("bad") as bad:
        bad.documents.update(WRONG_SHAPES[shape])
        backends = {"b1": stocked["b1"].url, "b2": stocked["b2"].url, "bad": bad.url}
        server = AggregatorServer(settings_for(tmp_path, backends))
        try:
            for path, ids in (("collections", ["ONE", SHARED, "TWO"]), ("processes", ["add", "only_b1", "only_b2"])):
                response = requests.get(f"{server.url}/{path}", timeout=30)
                assert response.status_code == 200, response.text
                assert response.json()["federation:missing"] == ["bad"], path
                assert [item["id"] for item in response.json()[path]] == ids
            formats = requests.get(f"{server.url}/file_formats", timeout=30).json()
            assert formats["federation:missing"] == ["bad"] and list(formats["output"]) == ["GTiff"]
        finally:
            server.stop()


def test_links_that_are_no_array_are_dropped_from_a_merge(stocked, tmp_path):
    # A shared collection whose entry on one backend had "links": 5 broke GET /collections with a 500.
    broken = dict(stocked["b2"].documents["collections"]["collections"][1], links=5)
    assert broken["id"] == SHARED
    stocked["b2"].documents["collections"] = {"collections": [stocked["b2"].documents["collections"]["collections"][0],
                                                              broken], "links": "none"}
    server = AggregatorServer(settings_for(tmp_path, {b: fake.url for b, fake in stocked.items()}))
    try:
        response = requests.get(f"{server.url}/collections", timeout=30)
        assert response.status_code == 200, response.text
        by_id = {c["id"]: c for c in response.json()["collections"]}
        assert by_id[SHARED]["federation:backends"] == ["b1", "b2"] and "federation:missing" not in response.json()
        assert {link["rel"] for link in by_id[SHARED]["links"]} >= {"self", "root", "parent"}
    finally:
        server.stop()
