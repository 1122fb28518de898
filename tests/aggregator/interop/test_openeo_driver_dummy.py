"""Interoperability: our aggregator federates openeo-driver's dummy backend (a backend we did not write)
next to one of ours, seen through the real `openeo` Python client."""

from __future__ import annotations

import time

import openeo
import pytest
import requests
from openeo.rest import OpenEoApiError

from tests.aggregator.interop.conftest import USER

BOX = {"west": 5.0, "south": 51.0, "east": 5.1, "north": 51.1}


def get(url: str) -> dict:
    response = requests.get(url, timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


def ids(document: dict, key: str) -> set[str]:
    return {entry["id"] for entry in document[key]}


def connect(mixed) -> openeo.Connection:
    return openeo.connect(mixed.aggregator.url, auto_validate=False)


def logged_in(mixed) -> openeo.Connection:
    connection = connect(mixed)
    connection.authenticate_basic(*USER)
    return connection


def dummy_graph(bands=("B02",)) -> dict:
    return {"load": {"process_id": "load_collection",
                     "arguments": {"id": "S2_FOOBAR", "spatial_extent": BOX,
                                   "temporal_extent": ["2020-01-01", "2020-02-01"], "bands": list(bands)}},
            "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                     "result": True}}


def test_both_backends_are_online_in_the_capabilities(mixed):
    federation = get(f"{mixed.aggregator.url}/")["federation"]
    assert sorted(federation) == ["A", "dummy"]
    assert federation["dummy"]["url"] == mixed.dummy.url
    assert [federation[b]["status"] for b in ("A", "dummy")] == ["online", "online"]


def test_collections_of_both_backends_carry_their_backend(mixed):
    dummy_ids = ids(get(f"{mixed.dummy.url}collections"), "collections")
    ours_ids = ids(get(f"{mixed.ours.url}/collections"), "collections")
    assert "S2_FOOBAR" in dummy_ids and not dummy_ids & ours_ids  # the test below relies on no shared ids

    listed = {c["id"]: c.get("federation:backends") for c in connect(mixed).list_collections()}
    assert set(listed) == dummy_ids | ours_ids
    assert {cid for cid, backends in listed.items() if backends == ["dummy"]} == dummy_ids
    assert {cid for cid, backends in listed.items() if backends == ["A"]} == ours_ids

    described = connect(mixed).describe_collection("S2_FOOBAR")
    assert described["federation:backends"] == ["dummy"]
    assert described["cube:dimensions"]["bands"]["values"] == ["B02", "B03", "B04", "B08"]


def test_processes_are_merged(mixed):
    dummy_ids = ids(get(f"{mixed.dummy.url}processes"), "processes")
    ours_ids = ids(get(f"{mixed.ours.url}/processes"), "processes")
    merged = {p["id"]: p for p in connect(mixed).list_processes()}
    assert set(merged) == dummy_ids | ours_ids
    # On both: no federation:backends; on one: that one (dummy-only e.g. run_udf, sleep; ours-only e.g. anomaly).
    assert {pid for pid, p in merged.items() if "federation:backends" not in p} == dummy_ids & ours_ids
    assert {pid for pid, p in merged.items() if p.get("federation:backends") == ["dummy"]} == dummy_ids - ours_ids
    assert {pid for pid, p in merged.items() if p.get("federation:backends") == ["A"]} == ours_ids - dummy_ids
    assert {"sleep", "add", "load_collection"} <= dummy_ids and "sleep" not in ours_ids


def test_basic_login_and_a_sync_request_routed_to_the_dummy(mixed):
    connection = logged_in(mixed)
    assert connection.describe_account()["name"] == USER[0]
    response = connection.post("/result", json={"process": {"process_graph": dummy_graph()}}, stream=True)
    body = response.content
    # The dummy "computes" a repr of its cube: proof that the request ran there, with the user's token.
    assert body.startswith(b"GTiff:save_result(DummyDataCube("), body[:200]
    assert "'B02'" in body.decode() and "'B03'" not in body.decode()


def test_a_failure_at_the_dummy_is_its_openeo_error_naming_it(mixed):
    with pytest.raises(OpenEoApiError) as raised:
        logged_in(mixed).post("/result", json={"process": {"process_graph": dummy_graph(bands=["NOPE"])}})
    error = raised.value
    # The dummy answers 500 Internal for a band it does not know; the aggregator keeps status and code and
    # names the backend in the message.
    assert (error.http_status_code, error.code) == (500, "Internal")
    assert error.message.startswith("Backend 'dummy': ") and "Invalid band name/index 'NOPE'" in error.message


def test_validation_is_routed_to_the_dummy(mixed):
    assert logged_in(mixed).validate_process_graph(dummy_graph()) == []


def test_batch_jobs_of_both_backends_are_listed(mixed):
    connection = logged_in(mixed)
    created = connection.create_job(dummy_graph(), additional={"federation:force-backend": "dummy"}, title="interop")
    listing = connection.list_jobs()
    assert listing.ext_federation_missing() == []
    mine = [job for job in listing if job["id"] == created.job_id]
    assert [(job["title"], job["federation:backends"]) for job in mine] == [("interop", ["dummy"])]
    assert created.describe()["federation:backends"] == ["dummy"]


def test_unauthenticated_sync_request_is_refused_before_any_backend(mixed):
    with pytest.raises(OpenEoApiError) as raised:
        connect(mixed).post("/result", json={"process": {"process_graph": dummy_graph()}})
    assert raised.value.http_status_code == 401


def test_an_oidc_token_reaches_the_dummy(mixed, oidc_server):
    token = oidc_server.user_token("olivia")["access_token"]
    connection = connect(mixed)
    connection.authenticate_oidc_access_token(token, provider_id="fed-idp")
    response = connection.post("/result", json={"process": {"process_graph": dummy_graph()}}, stream=True)
    assert response.content.startswith(b"GTiff:save_result(DummyDataCube(")
    # ... and the dummy knows the user by the issuer's subject (it resolved the token at the userinfo endpoint).
    me = requests.get(f"{mixed.dummy.url}me", headers={"Authorization": f"Bearer oidc/testoidc/{token}"},
                      timeout=15).json()
    assert me["user_id"] == "olivia"


def wait_for(predicate, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s")


def test_a_hanging_dummy_goes_missing_and_comes_back(mixed):
    url = mixed.aggregator.url
    dummy_status = lambda: get(f"{url}/")["federation"]["dummy"]["status"]  # noqa: E731
    mixed.dummy.pause()  # accepts connections, never answers
    try:
        wait_for(lambda: dummy_status() == "offline", timeout=20)
        start = time.monotonic()
        listing = get(f"{url}/collections")
        assert time.monotonic() - start < 10  # the deadline (3 s) or the open circuit, never the hang
        assert listing["federation:missing"] == ["dummy"]
        assert {c["id"] for c in listing["collections"]} == ids(get(f"{mixed.ours.url}/collections"), "collections")
    finally:
        mixed.dummy.resume()
    wait_for(lambda: dummy_status() == "online", timeout=20)
    wait_for(lambda: "S2_FOOBAR" in ids(get(f"{url}/collections"), "collections"), timeout=20)
