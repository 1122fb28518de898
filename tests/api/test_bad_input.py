"""Anything a client can send gets an openEO error with the right status, never a 500."""

from __future__ import annotations

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
