"""Anything a client can send gets an openEO error with the right status, never a 500."""

from __future__ import annotations

import pytest
import requests

UDP = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


def test_malformed_json(live_server, api):
    headers = {**live_server.auth_headers(), "Content-Type": "application/json"}
    response = requests.put(f"{api}/process_graphs/p1", data=b'{"process_graph": {', headers=headers)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "JsonInvalid" and "line 1" in body["message"]


def test_wrong_content_type(live_server, api):
    headers = {**live_server.auth_headers(), "Content-Type": "text/plain"}
    response = requests.put(f"{api}/process_graphs/p1", data=b"hello", headers=headers)
    assert response.status_code == 415
    assert response.json()["code"] == "UnsupportedMediaType"
    assert "application/json" in response.json()["message"]


def test_body_over_the_maximum_is_413(live_server, api):
    headers = live_server.auth_headers()
    big = {"process_graph": UDP["process_graph"], "description": "x" * (100 * 1024)}
    response = requests.put(f"{api}/process_graphs/big", json=big, headers=headers)
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "PayloadTooLarge" and str(64 * 1024) in body["message"]


def test_json_that_is_not_a_process(live_server, api):
    headers = live_server.auth_headers()
    for payload, code in [([1, 2], "ProcessGraphMissing"), ({"process_graph": {}}, "ProcessGraphMissing"),
                          ({"process_graph": {"a": {"arguments": {}}}}, "ProcessGraphInvalid"),
                          ({"process_graph": {"a": {"process_id": "add", "arguments": {}}}}, "ProcessGraphInvalid"),
                          ({**UDP, "parameters": "x"}, "ProcessGraphInvalid")]:
        response = requests.put(f"{api}/process_graphs/p2", json=payload, headers=headers)
        assert (response.status_code, response.json()["code"]) == (400, code), payload


def test_bad_paging_arguments(api):
    for query in ("limit=abc", "limit=0", "offset=-1"):
        response = requests.get(f"{api}/collections?{query}")
        assert response.status_code == 400 and response.json()["code"] == "BadRequest", query


@pytest.mark.parametrize("query", ["limit=99999999999999999999", "offset=99999999999999999999", "limit=1000001",
                                   "limit=1.5", "limit=%2B5", "offset=-3", "limit=1_0"])
def test_paging_values_out_of_range_say_the_accepted_range(live_server, api, query):
    """Every endpoint that pages: jobs, collections, job logs (huge values were a 500 OverflowError)."""
    headers = live_server.auth_headers()
    response = requests.post(f"{api}/jobs", json={"process": UDP}, headers=headers)
    job_id = response.headers["OpenEO-Identifier"]
    for path in ("jobs", "collections", f"jobs/{job_id}/logs"):
        response = requests.get(f"{api}/{path}?{query}", headers=headers)
        body = response.json()
        assert (response.status_code, body["code"]) == (400, "BadRequest"), (path, body)
        name = query.split("=")[0]
        expected = "from 1 to 1,000,000" if name == "limit" else "from 0 to 1,000,000,000"
        assert f"'{name}' must be a whole number {expected}" in body["message"], body["message"]


def test_paging_values_in_range_work(live_server, api):
    headers = live_server.auth_headers()
    assert requests.get(f"{api}/jobs?limit=1000000&offset=1000000000", headers=headers).json()["jobs"] == []
    assert len(requests.get(f"{api}/collections?limit=1&offset=0").json()["collections"]) == 1


def test_garbage_authorization_headers(api):
    cases = {"Basic abc": (403, "AuthenticationSchemeInvalid"), "Bearer": (403, "AuthenticationSchemeInvalid"),
             "Bearer nonsense": (401, "TokenInvalid"), "Bearer basic//": (401, "TokenInvalid"),
             "Bearer oidc/unknown/abc": (401, "TokenInvalid"), "Bearer basic//a.b.c": (401, "TokenInvalid")}
    for header, expected in cases.items():
        response = requests.get(f"{api}/me", headers={"Authorization": header})
        assert (response.status_code, response.json()["code"]) == expected, header


def test_deeply_nested_json_is_400(live_server, api):
    body = "[" * 20000 + "]" * 20000  # deeper than the recursion limit, within the 64 KB test limit
    headers = {**live_server.auth_headers(), "Content-Type": "application/json"}
    response = requests.post(f"{api}/result", data=body, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "JsonInvalid")
