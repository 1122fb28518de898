"""A backend's 200 answer for one job that is no job document (no ``id`` and ``status``) or no results (no
``assets``) is that backend's invalid answer (502 naming it), not a document passed on to the user: the
clients read ``status`` and ``assets`` without a check and failed with a KeyError."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from aggregator.jobs import ids
from tests.aggregator.app.conftest import AggregatorServer, settings_for
from tests.support.fake_backends import FakeBackend

NOT_A_JOB = b'{"title": "a login page, a proxy, another API", "links": []}'


class OddJobs(FakeBackend):
    """Answers every call under /jobs/ with 200 and a JSON object that is neither a job nor results."""

    def answer(self, method, target, headers, body, client_port):
        if "/jobs/" in urlsplit(target).path:
            return 200, [("Content-Type", "application/json")], NOT_A_JOB
        return super().answer(method, target, headers, body, client_port)


def with_login(backend: FakeBackend) -> FakeBackend:
    backend.documents["credentials/basic"] = {"access_token": f"token-of-{backend.backend_id}", "expires_in": 3600}
    return backend


def test_a_job_or_results_without_their_required_fields_are_the_backends_invalid_answer(tmp_path):
    with with_login(OddJobs("b1")) as odd, with_login(FakeBackend("b2")) as other:
        server = AggregatorServer(settings_for(tmp_path, {"b1": odd.url, "b2": other.url}))
        try:
            headers = server.auth_headers(*server.new_user())
            job_id = ids.encode("b1", "job-1")
            for path, reason in (("", "GET /jobs/{id}: not a job (no 'id' and 'status')"),
                                 ("/results", "GET /jobs/{id}/results: no 'assets' object")):
                response = requests.get(f"{server.url}/jobs/{job_id}{path}", headers=headers, timeout=30)
                assert (response.status_code, response.json()["code"]) == (502, "BackendResponseInvalid"), path
                message = f"Backend 'b1' sent an invalid response ({reason}). Try again later."
                assert response.json()["message"] == message
        finally:
            server.stop()


class OddLogs(FakeBackend):
    """Answers GET /jobs/{id}/logs with a page whose ``links`` are no array."""

    def answer(self, method, target, headers, body, client_port):
        if urlsplit(target).path.endswith("/logs"):
            return 200, [("Content-Type", "application/json")], b'{"logs": [], "links": 5}'
        return super().answer(method, target, headers, body, client_port)


def test_log_links_that_are_no_array_are_ignored(tmp_path):
    # logs_next_offset iterated "links": 5: a 500 (TypeError) instead of the page.
    with with_login(OddLogs("b1")) as odd, with_login(FakeBackend("b2")) as other:
        server = AggregatorServer(settings_for(tmp_path, {"b1": odd.url, "b2": other.url}))
        try:
            headers = server.auth_headers(*server.new_user())
            response = requests.get(f"{server.url}/jobs/{ids.encode('b1', 'job-1')}/logs", headers=headers, timeout=30)
            assert response.status_code == 200, response.text
            assert (response.json()["logs"], response.json()["federation:missing"]) == ([], [])
        finally:
            server.stop()
