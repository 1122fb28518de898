"""GET /jobs when backends fail: an aggregator (in this process, on a real HTTP server) over the two real
backends of the package plus three bad ones: H accepts the login but never answers GET /jobs, R refuses
every connection (so the login fails there too), D answers the login and is then stopped. The listing
answers within its deadline (twice it at most: further pages of the healthy backends get a deadline of
their own) with the bad ones in ``federation:missing``, and still pages through every job of A and B
exactly once."""

from __future__ import annotations

import time
from datetime import datetime

import openeo
import pytest
import requests

from aggregator.jobs import ids
from tests.aggregator.app.conftest import AggregatorServer, settings_for
from tests.aggregator.e2e.conftest import USER
from tests.aggregator.e2e.test_jobs import dem, token_headers
from tests.support.fake_backends import FakeBackend, RefusingPort

DEADLINE = 2.0


class HangingJobs(FakeBackend):
    """Answers everything a backend must (capabilities, login) but never GET /jobs."""

    def answer(self, method, target, headers, body, client_port):
        if target.split("?")[0].rstrip("/").endswith("/jobs"):
            self._release.wait(60)
        return super().answer(method, target, headers, body, client_port)


def with_login(backend: FakeBackend) -> FakeBackend:
    backend.documents["credentials/basic"] = {"access_token": f"token-of-{backend.backend_id}", "expires_in": 3600}
    backend.documents["jobs"] = {"jobs": [], "links": []}
    return backend


@pytest.fixture(scope="module")
def faulty(federation, tmp_path_factory):
    with with_login(HangingJobs("H")) as hanging, with_login(FakeBackend("D")) as dying, RefusingPort() as refusing:
        backends = {"A": federation.a.url, "B": federation.b.url, "H": hanging.url, "R": refusing.url,
                    "D": dying.url}
        server = AggregatorServer(settings_for(tmp_path_factory.mktemp("faulty"), backends,
                                               jobs_listing_deadline=DEADLINE))
        try:
            server.new_user(USER[1], name=USER[0])
            connection = openeo.connect(server.url).authenticate_basic(*USER)
            dying.stop()  # after the login: the aggregator holds a token for it, its calls are refused
            yield server, connection
        finally:
            server.stop()


def expected_order(federation) -> list[str]:
    jobs = []
    for backend_id, url in (("A", federation.a.url), ("B", federation.b.url)):
        own = requests.get(f"{url}/jobs", headers=token_headers(url), timeout=30).json()["jobs"]
        jobs += [(datetime.fromisoformat(job["created"]).timestamp(), ids.encode(backend_id, job["id"])) for job in own]
    return [fid for _, fid in sorted(jobs, key=lambda e: (-e[0], e[1]))]


def test_failing_backends_are_missing_and_the_listing_answers_in_time(faulty, federation):
    server, connection = faulty
    for url in (federation.a.url, federation.b.url):  # at least one job on each real backend
        dem(openeo.connect(url).authenticate_basic(*USER)).create_job(title="made on the backend itself")
    expected = expected_order(federation)
    started = time.monotonic()
    listing = connection.list_jobs(limit=None)
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + 3, f"GET /jobs took {elapsed:.1f} s"
    assert listing.ext_federation_missing() == ["D", "H", "R"]
    assert [job["id"] for job in listing] == expected
    assert {job["federation:backends"][0] for job in listing} == {"A", "B"}


def test_paging_goes_on_with_backends_missing(faulty, federation):
    server, connection = faulty
    for url, count in ((federation.a.url, 3), (federation.b.url, 2)):
        own = openeo.connect(url).authenticate_basic(*USER)
        for number in range(count):
            dem(own).create_job(title=f"made on the backend itself, {number}")
    expected = expected_order(federation)
    assert len(expected) >= 7
    headers = {"Authorization": f"Bearer {connection.auth.bearer}"}
    listed, url, pages = [], f"{server.url}/jobs?limit=2", 0
    while url:
        started = time.monotonic()
        response = requests.get(url, headers=headers, timeout=30)
        assert time.monotonic() - started < 2 * DEADLINE + 3
        page = response.json()
        assert response.status_code == 200 and page["federation:missing"] == ["D", "H", "R"]
        listed += [job["id"] for job in page["jobs"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        pages += 1
    assert listed == expected and pages == (len(expected) + 1) // 2


def test_a_job_on_a_failing_backend_answers_an_error_naming_it(faulty):
    server, connection = faulty
    headers = {"Authorization": f"Bearer {connection.auth.bearer}"}
    for backend_id, status, code in (("D", 503, "BackendUnavailable"), ("R", 403, "BackendCredentialsMissing")):
        response = requests.get(f"{server.url}/jobs/{ids.encode(backend_id, 'job-1')}", headers=headers, timeout=30)
        assert (response.status_code, response.json()["code"]) == (status, code)
        assert f"Backend '{backend_id}'" in response.json()["message"]
