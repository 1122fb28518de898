"""The documents of GET /jobs and GET /jobs/{id} against the openEO spec's batch_job schema."""

from __future__ import annotations

import requests

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


def _create(api: str, headers: dict, **fields) -> str:
    response = requests.post(f"{api}/jobs", json={"process": GRAPH, **fields}, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    return response.headers["OpenEO-Identifier"]


def test_a_job_without_a_plan_has_no_plan_field_and_one_with_a_plan_names_it(live_server, api):
    # found by schema fuzzing (tests/reliability/test_fuzzing.py): the spec's `plan` is a string, and the
    # job documents said "plan": null for a job created without one
    headers = live_server.auth_headers()
    default_job = _create(api, headers, title="no plan")
    plans = requests.get(f"{api}/", timeout=30).json()["billing"]["plans"]
    chosen = plans[-1]["name"]
    planned_job = _create(api, headers, title="with a plan", plan=chosen)

    described = requests.get(f"{api}/jobs/{default_job}", headers=headers, timeout=30).json()
    assert "plan" not in described and described["title"] == "no plan"
    assert requests.get(f"{api}/jobs/{planned_job}", headers=headers, timeout=30).json()["plan"] == chosen
    listed = {job["id"]: job for job in requests.get(f"{api}/jobs", headers=headers, timeout=30).json()["jobs"]}
    assert "plan" not in listed[default_job] and listed[planned_job]["plan"] == chosen
