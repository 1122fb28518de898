"""Batch jobs through the aggregator with the real `openeo` client, in front of two real backends with their
job runners (A: S2 + DEM, B: S1 + DEM): each job runs where its data is, its results equal the same graph
run directly on that backend, documents point at the aggregator (signed downloads at the backend), the
merged listing pages through every job once, stop and delete reach the backend, costs are charged once."""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
import openeo
import pytest
import requests

from aggregator.jobs import ids
from backend.demo import DEMO_S2_COLLECTION
from tests.aggregator.e2e.conftest import USER
from tests.aggregator.e2e.graphs import dem, ndvi, read, s1_mean

QUIET = {"max_poll_interval": 0.5, "print": lambda *_: None}


def token_headers(url: str) -> dict[str, str]:
    token = requests.get(f"{url}/credentials/basic", auth=USER, timeout=30).json()["access_token"]
    return {"Authorization": f"Bearer basic//{token}"}


@pytest.fixture(scope="module")
def aggregator(federation) -> openeo.Connection:
    return openeo.connect(federation.aggregator.url).authenticate_basic(*USER)


@pytest.fixture(scope="module")
def headers(federation) -> dict[str, str]:
    return token_headers(federation.aggregator.url)


def direct(url: str) -> openeo.Connection:
    return openeo.connect(url).authenticate_basic(*USER)


def balance(connection: openeo.Connection) -> float:
    return connection.describe_account()["budget"]


@pytest.fixture(scope="module")
def finished(aggregator, federation, tmp_path_factory):
    """One job per backend run to the end through the aggregator, with the federation balance before and
    the files downloaded through the client."""
    runs = {}
    for backend_id, graph_of in (("A", ndvi), ("B", s1_mean)):
        before = balance(aggregator)
        job = graph_of(aggregator).create_job(out_format="GTiff", title=f"federated on {backend_id}")
        job.start_and_wait(**QUIET)
        target = tmp_path_factory.mktemp(f"job-{backend_id}")
        paths = job.get_results().download_files(target)
        runs[backend_id] = (job, before, paths)
    return runs


@pytest.mark.parametrize("backend_id, graph_of", [("A", ndvi), ("B", s1_mean)])
def test_a_job_runs_where_its_data_is_and_equals_the_backends_own_result(finished, federation, backend_id, graph_of,
                                                                           tmp_path):
    job, _, paths = finished[backend_id]
    assert job.job_id.startswith("j1-") and ids.decode(job.job_id).backend_id == backend_id
    metadata = job.describe()
    assert (metadata["id"], metadata["status"], metadata["progress"]) == (job.job_id, "finished", 100)
    assert metadata["federation:backends"] == [backend_id] and metadata["federation:missing"] == []
    assert metadata["federation:reason"].startswith(f"{backend_id} offers collection(s)")
    backend_url = {"A": federation.a.url, "B": federation.b.url}[backend_id]
    own = direct(backend_url)
    graph_of(own).download(tmp_path / "direct.tif", format="GTiff")
    tif = next(p for p in paths if p.name == "result.tif")
    expected, got = read(tmp_path / "direct.tif"), read(tif)
    assert got.shape == expected.shape and np.isfinite(expected).any()
    np.testing.assert_array_equal(got, expected)

    backend_job = own.job(ids.decode(job.job_id).job_id).describe()
    assert (backend_job["status"], backend_job["costs"]) == ("finished", metadata["costs"])
    assert {link["rel"]: link["href"] for link in metadata["links"]} == {
        "monitor": f"{federation.aggregator.url}/jobs/{job.job_id}/logs",
        "result": f"{federation.aggregator.url}/jobs/{job.job_id}/results"}
    results = job.get_results().get_metadata()
    assert results["id"] == job.job_id and results["federation:missing"] == []
    for asset in results["assets"].values():  # signed: downloads go to the backend, no token needed
        assert asset["href"].startswith(backend_url + "/jobs/") and "signature=" in asset["href"]
    canonical = next(link["href"] for link in results["links"] if link["rel"] == "canonical")
    assert canonical.startswith(backend_url) and "signature=" in canonical


def test_logs_and_estimate_come_from_the_backend(finished, federation, headers):
    job, _, _ = finished["A"]
    messages = [entry["message"] for entry in job.logs()]
    assert messages[0].startswith("Queued; ") and messages[-1].startswith("Finished in")
    assert [entry["message"] for entry in job.logs(level="error")] == []
    own = direct(federation.a.url).job(ids.decode(job.job_id).job_id)
    assert [entry["id"] for entry in job.logs()] == [entry["id"] for entry in own.logs()]

    first = requests.get(f"{federation.aggregator.url}/jobs/{job.job_id}/logs?limit=1", headers=headers, timeout=30)
    page = first.json()
    assert first.status_code == 200 and page["federation:missing"] == [] and len(page["logs"]) == 1
    (next_link,) = [link["href"] for link in page["links"] if link["rel"] == "next"]
    assert next_link.startswith(f"{federation.aggregator.url}/jobs/{job.job_id}/logs?offset=")
    second = requests.get(next_link, headers=headers, timeout=30).json()
    assert second["logs"][0]["id"] != page["logs"][0]["id"]
    assert [page["logs"][0]["message"], second["logs"][0]["message"]] == messages[:2]

    estimate = job.estimate()
    assert estimate == own.estimate() and {"costs", "duration", "size"} <= set(estimate)


def test_the_federation_charges_a_jobs_costs_once(finished, aggregator, headers, federation):
    """Costs of both finished jobs, after many GETs of each (describe, results, listing, concurrent ones):
    the balance dropped by exactly their costs."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [finished[b][0] for b in ("A", "B")]
    before = finished["A"][1]  # the balance before the first job was created
    costs = [job.describe()["costs"] for job in jobs]
    assert all(c > 0 for c in costs)

    def look(job_id: str) -> int:
        return requests.get(f"{federation.aggregator.url}/jobs/{job_id}", headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(look, [job.job_id for job in jobs] * 8)) == {200}
    for _ in range(3):
        aggregator.list_jobs()
        for job in jobs:
            job.describe()
    assert balance(aggregator) == pytest.approx(before - sum(costs), abs=0.0015)


def test_create_names_the_chosen_backend_and_force_backend_picks_it(federation, headers):
    graph = dem(openeo.connect(federation.aggregator.url)).flat_graph()
    plain = requests.post(f"{federation.aggregator.url}/jobs", json={"process": {"process_graph": graph}},
                          headers=headers, timeout=30)
    assert plain.status_code == 201, plain.text
    assert plain.headers["OpenEO-Federation-Backend"] in ("A", "B")
    assert "DEM_DEMO" in plain.headers["OpenEO-Federation-Reason"]
    job_id = plain.headers["OpenEO-Identifier"]
    assert plain.headers["Location"] == f"{federation.aggregator.url}/jobs/{job_id}"

    for forced in ("A", "B"):
        body = {"process": {"process_graph": graph}, "job_options": {"federation:force-backend": forced}}
        response = requests.post(f"{federation.aggregator.url}/jobs", json=body, headers=headers, timeout=30)
        assert response.status_code == 201 and response.headers["OpenEO-Federation-Backend"] == forced
        job = requests.get(f"{federation.aggregator.url}/jobs/{response.headers['OpenEO-Identifier']}",
                           headers=headers, timeout=30).json()
        assert job["federation:backends"] == [forced]
        assert job["federation:reason"] == f"{forced} is named by federation:force-backend"
        assert job["process"]["process_graph"] == graph


def test_the_listing_pages_through_every_job_once_newest_first(federation, aggregator, headers):
    for graph_of, title in ((dem, "dem 1"), (s1_mean, "s1 1"), (dem, "dem 2"), (ndvi, "s2"), (s1_mean, "s1 2"),
                            (dem, "dem 3")):
        graph_of(aggregator).create_job(out_format="GTiff", title=title)
    expected = []
    for backend_id, url in (("A", federation.a.url), ("B", federation.b.url)):
        own = requests.get(f"{url}/jobs", headers=token_headers(url), timeout=30).json()["jobs"]
        expected += [(job["created"], ids.encode(backend_id, job["id"])) for job in own]
    assert len(expected) >= 6
    order = [fid for _, fid in sorted(expected, key=lambda e: (-datetime.fromisoformat(e[0]).timestamp(), e[1]))]

    listed, url = [], f"{federation.aggregator.url}/jobs?limit=1"
    while url:
        page = requests.get(url, headers=headers, timeout=30).json()
        assert len(page["jobs"]) <= 1 and page["federation:missing"] == []
        for job in page["jobs"]:
            assert job["federation:backends"] == [ids.decode(job["id"]).backend_id]
            assert "process" not in job
        listed += [job["id"] for job in page["jobs"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert listed == order
    assert [job["id"] for job in aggregator.list_jobs(limit=None)] == order


def test_stop_and_delete_reach_the_backend(federation, aggregator):
    """A long job (every date and band of both demo tiles) is stopped while it runs, then deleted."""
    cube = aggregator.load_collection(DEMO_S2_COLLECTION, bands=["B02", "B03", "B04", "B08", "B11"])
    job = cube.create_job(out_format="GTiff", title="to stop")
    own = direct(federation.a.url).job(ids.decode(job.job_id).job_id)
    job.start()
    deadline = time.monotonic() + 120
    while job.describe()["status"] != "running":
        assert time.monotonic() < deadline, "the job did not start running"
        time.sleep(0.2)
    job.stop()
    assert own.describe()["status"] == "created"
    assert job.describe()["status"] == "created"
    assert "Stopped by the user while running" in " ".join(entry["message"] for entry in job.logs())
    job.delete()
    gone = requests.get(f"{federation.a.url}/jobs/{own.job_id}", headers=token_headers(federation.a.url), timeout=30)
    assert (gone.status_code, gone.json()["code"]) == (404, "JobNotFound")
    after = requests.get(f"{federation.aggregator.url}/jobs/{job.job_id}", headers=token_headers(federation.aggregator.url),
                         timeout=30)
    assert (after.status_code, after.json()["code"]) == (404, "JobNotFound")
    assert "Backend 'A'" in after.json()["message"]


def test_unknown_and_foreign_ids_are_404_saying_why(federation, headers):
    api = federation.aggregator.url
    cases = {
        "nonsense": "not a job id of this federation",
        ids.encode("Z", "1234"): "backend 'Z', which is no longer part of this federation",
        "s1-abc123": "does not exist",
    }
    for job_id, says in cases.items():
        for path in (f"jobs/{job_id}", f"jobs/{job_id}/results", f"jobs/{job_id}/logs"):
            response = requests.get(f"{api}/{path}", headers=headers, timeout=30)
            assert (response.status_code, response.json()["code"]) == (404, "JobNotFound"), path
            assert says in response.json()["message"], response.json()["message"]
    missing_on_a = ids.encode("A", "0123456789abcdef")
    response = requests.get(f"{api}/jobs/{missing_on_a}", headers=headers, timeout=30)
    assert (response.status_code, response.json()["code"]) == (404, "JobNotFound")
    assert response.json()["message"].startswith("Backend 'A': ")


def test_a_graph_on_another_backend_reads_a_federated_jobs_results_by_url(finished, aggregator, federation, tmp_path):
    """load_stac of the aggregator's results URL of a job on A, run on B: B gets A's signed results URL."""
    job_a, _, paths = finished["A"]
    backend_job_id = ids.decode(job_a.job_id).job_id
    results_url = f"{federation.aggregator.url}/jobs/{job_a.job_id}/results"
    by_url = aggregator.load_stac(results_url).create_job(out_format="GTiff", title="load_stac on B",
                                                          job_options={"federation:force-backend": "B"})
    assert ids.decode(by_url.job_id).backend_id == "B"
    on_b = direct(federation.b.url).job(ids.decode(by_url.job_id).job_id).describe()["process"]["process_graph"]
    (signed,) = [node["arguments"]["url"] for node in on_b.values() if node["process_id"] == "load_stac"]
    assert signed.startswith(f"{federation.a.url}/jobs/{backend_job_id}/results") and "signature=" in signed
    shown = by_url.describe()["process"]["process_graph"]
    assert [node["arguments"]["url"] for node in shown.values() if node["process_id"] == "load_stac"] == [signed]
    by_url.start_and_wait(**QUIET)
    copied = by_url.get_results().download_files(tmp_path / "copy")
    original = read(next(p for p in paths if p.name == "result.tif"))
    np.testing.assert_array_equal(read(next(p for p in copied if p.name.endswith(".tif"))), original)


def test_update_reaches_the_backend_and_a_job_cannot_move(federation, aggregator, headers):
    job = dem(aggregator).create_job(out_format="GTiff", title="before",
                                     job_options={"federation:force-backend": "B"})
    url = f"{federation.aggregator.url}/jobs/{job.job_id}"
    graph = s1_mean(aggregator).flat_graph()
    changed = requests.patch(url, json={"title": "after", "process": {"process_graph": graph}}, headers=headers,
                             timeout=30)
    assert changed.status_code == 204, changed.text
    own = direct(federation.b.url).job(ids.decode(job.job_id).job_id).describe()
    assert (own["title"], own["process"]["process_graph"]) == ("after", graph)
    moved = requests.patch(url, json={"title": "x", "federation:force-backend": "A"}, headers=headers, timeout=30)
    assert (moved.status_code, moved.json()["code"]) == (400, "FederationNoBackend")
    assert "cannot move" in moved.json()["message"] and job.describe()["title"] == "after"
