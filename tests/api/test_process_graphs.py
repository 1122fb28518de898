"""User-defined processes: CRUD, owner-only access, id rules."""

from __future__ import annotations

import requests

UDP = {
    "summary": "Add two numbers",
    "parameters": [{"name": "a", "description": "first", "schema": {"type": "number"}},
                   {"name": "b", "description": "second", "schema": {"type": "number"}, "default": 1,
                    "optional": True}],
    "returns": {"schema": {"type": "number"}},
    "process_graph": {"sum": {"process_id": "add", "arguments": {"x": {"from_parameter": "a"},
                                                                  "y": {"from_parameter": "b"}}, "result": True}},
}


def test_crud_round_trip(live_server, api):
    headers = live_server.auth_headers()
    put = requests.put(f"{api}/process_graphs/add_two", json={**UDP, "id": "ignored"}, headers=headers)
    assert put.status_code == 200
    stored = requests.get(f"{api}/process_graphs/add_two", headers=headers).json()
    assert stored["id"] == "add_two"
    assert stored["process_graph"] == UDP["process_graph"]
    assert stored["parameters"][1]["default"] == 1
    listing = requests.get(f"{api}/process_graphs", headers=headers).json()
    assert [p["id"] for p in listing["processes"]] == ["add_two"]
    assert listing["processes"][0]["summary"] == "Add two numbers"
    assert "process_graph" not in listing["processes"][0]

    updated = {**UDP, "summary": "Add two numbers, v2"}
    assert requests.put(f"{api}/process_graphs/add_two", json=updated, headers=headers).status_code == 200
    assert requests.get(f"{api}/process_graphs/add_two", headers=headers).json()["summary"].endswith("v2")

    assert requests.delete(f"{api}/process_graphs/add_two", headers=headers).status_code == 204
    gone = requests.get(f"{api}/process_graphs/add_two", headers=headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "ProcessGraphNotFound")
    assert requests.get(f"{api}/process_graphs", headers=headers).json()["processes"] == []


def test_other_users_process_is_404_without_details(live_server, api):
    owner, intruder = live_server.auth_headers(), live_server.auth_headers()
    requests.put(f"{api}/process_graphs/secret_udp", json=UDP, headers=owner).raise_for_status()
    for method in ("GET", "DELETE"):
        response = requests.request(method, f"{api}/process_graphs/secret_udp", headers=intruder)
        assert (response.status_code, response.json()["code"]) == (404, "ProcessGraphNotFound")
    assert requests.get(f"{api}/process_graphs", headers=intruder).json()["processes"] == []
    # The owner's process is untouched by the intruder's DELETE and PUT of the same id.
    requests.put(f"{api}/process_graphs/secret_udp", json={**UDP, "summary": "mine"}, headers=intruder)
    assert requests.get(f"{api}/process_graphs/secret_udp", headers=owner).json()["summary"] == "Add two numbers"


def test_unknown_udp_is_404(live_server, api):
    response = requests.get(f"{api}/process_graphs/never_stored", headers=live_server.auth_headers())
    assert (response.status_code, response.json()["code"]) == (404, "ProcessGraphNotFound")
    assert "never_stored" in response.json()["message"]


def test_invalid_id_is_rejected(live_server, api):
    headers = live_server.auth_headers()
    response = requests.put(f"{api}/process_graphs/bad-id!", json=UDP, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "ProcessGraphIdInvalid")
    response = requests.get(f"{api}/process_graphs/bad-id!", headers=headers)
    assert response.status_code == 404


def test_predefined_process_id_is_rejected(live_server, api):
    response = requests.put(f"{api}/process_graphs/ndvi", json=UDP, headers=live_server.auth_headers())
    assert (response.status_code, response.json()["code"]) == (400, "PredefinedProcessExists")


def test_needs_authentication(api):
    response = requests.get(f"{api}/process_graphs")
    assert (response.status_code, response.json()["code"]) == (401, "AuthenticationRequired")
