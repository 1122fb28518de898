"""The documents of GET /jobs, GET /jobs/{id} and GET /jobs/{id}/results against the openEO spec's schemas."""

from __future__ import annotations

import requests

from backend.app import create_app
from backend.settings import load_settings
from tests.conftest import LiveServer

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


def test_partial_results_of_a_job_never_started_are_refused_and_of_a_queued_one_say_running(tmp_path):
    # found by schema fuzzing: GET /jobs/{id}/results?partial=true said "openeo:status": "created" (or
    # "queued"), which the spec's result_status (running, canceled, finished, error) does not have
    server = LiveServer(create_app(load_settings(data_dir=tmp_path, demo_catalog=False)))  # no job runner
    try:
        api, headers = server.url, server.auth_headers()
        job_id = _create(api, headers)
        refused = requests.get(f"{api}/jobs/{job_id}/results?partial=true", headers=headers, timeout=30)
        assert (refused.status_code, refused.json()["code"]) == (400, "JobNotStarted")
        assert "POST /jobs/{id}/results" in refused.json()["message"]

        assert requests.post(f"{api}/jobs/{job_id}/results", headers=headers, timeout=30).status_code == 202
        partial = requests.get(f"{api}/jobs/{job_id}/results", params={"partial": "true"}, headers=headers, timeout=30)
        assert partial.status_code == 200 and requests.get(f"{api}/jobs/{job_id}", headers=headers,
                                                            timeout=30).json()["status"] == "queued"
        assert (partial.json()["openeo:status"], partial.json()["assets"]) == ("running", {})
        not_finished = requests.get(f"{api}/jobs/{job_id}/results", headers=headers, timeout=30)
        assert (not_finished.status_code, not_finished.json()["code"]) == (400, "JobNotFinished")
    finally:
        server.stop()
