"""Split batch jobs through the aggregator with the real `openeo` client: S2 on A merged with S1 on B as one
job (``s1-`` id). The S1 part runs as a job on B, then the primary job on A reads its signed results; the
results equal the same graph's synchronous answer; the listing shows the split job, not its backends'
jobs; costs of every backend job are charged once; stop and delete reach every backend job."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openeo
import pytest
import requests
from openeo.rest import OpenEoApiError

from aggregator.jobs import ids
from tests.aggregator.e2e.conftest import USER
from tests.aggregator.e2e.test_jobs import QUIET, balance, direct, token_headers
from tests.aggregator.e2e.test_split import merged, read


@pytest.fixture(scope="module")
def aggregator(federation) -> openeo.Connection:
    return openeo.connect(federation.aggregator.url).authenticate_basic(*USER)


@pytest.fixture(scope="module")
def finished(aggregator, tmp_path_factory):
    before = balance(aggregator)
    job = merged(aggregator).create_job(out_format="GTiff", title="split S2 x S1")
    assert job.describe()["status"] == "created"
    job.start_and_wait(**QUIET)
    paths = job.get_results().download_files(tmp_path_factory.mktemp("split-job"))
    return job, (before, balance(aggregator)), paths


def backend_jobs(document: dict) -> dict[str, ids.BackendJobRef]:
    split = document["federation:split"]
    found = {part["node"]: ids.decode(part["job"]) for part in split["parts"]}
    if split["primary"]["job"]:
        found["primary"] = ids.decode(split["primary"]["job"])
    return found


def test_the_split_job_equals_the_synchronous_answer(finished, aggregator, tmp_path):
    job, _, paths = finished
    assert job.job_id.startswith("s1-")
    tiffs = [path for path in paths if path.suffix == ".tif"]
    assert len(tiffs) == 1
    values, bands = read(tiffs[0])
    merged(aggregator).download(tmp_path / "sync.tif", format="GTiff")
    expected, expected_bands = read(tmp_path / "sync.tif")
    assert bands == expected_bands == ["B11", "VH"]
    np.testing.assert_array_equal(values, expected)


def test_the_job_names_its_parts_and_the_backends_jobs_ran_there(finished, federation):
    job, _, _ = finished
    document = job.describe()
    assert (document["status"], document["progress"]) == ("finished", 100.0)
    assert document["federation:backends"] == ["A", "B"]
    assert "split" in document["federation:reason"] and "on B" in document["federation:reason"]
    assert document["process"]["process_graph"] == merged(job.connection).save_result("GTiff").flat_graph()
    jobs = backend_jobs(document)
    assert {node: ref.backend_id for node, ref in jobs.items()} == {"loadcollection2": "B", "primary": "A"}
    on_b = direct(federation.b.url).job(jobs["loadcollection2"].job_id).describe()
    on_a = direct(federation.a.url).job(jobs["primary"].job_id).describe()
    assert on_b["status"] == on_a["status"] == "finished"
    assert on_a["title"] == "split S2 x S1"
    assert "load_stac" in {node["process_id"] for node in on_a["process"]["process_graph"].values()}
    assert document["costs"] == pytest.approx(on_a["costs"] + on_b["costs"])
    entries = [entry["message"] for entry in job.logs()]
    assert any("loadcollection2" in message and "finished" in message for message in entries)


def test_costs_of_every_backend_job_are_charged_once(finished, aggregator):
    job, (before, after), _ = finished
    costs = job.describe()["costs"]
    assert costs > 0 and after == pytest.approx(before - costs, abs=0.0015)
    now = balance(aggregator)  # other tests' requests may have cost something since
    for _ in range(3):  # looking again charges nothing more
        job.describe()
        aggregator.list_jobs()
    assert balance(aggregator) == now


def test_the_listing_shows_the_split_job_and_not_its_backends_jobs(finished, aggregator):
    job, _, _ = finished
    listed = [entry["id"] for entry in aggregator.list_jobs(limit=None)]
    assert listed.count(job.job_id) == 1
    hidden = {ref.federated_id for ref in backend_jobs(job.describe()).values()}
    assert hidden and not hidden & set(listed)
    entry = next(entry for entry in aggregator.list_jobs(limit=None) if entry["id"] == job.job_id)
    assert (entry["status"], entry["title"]) == ("finished", "split S2 x S1")


def test_stop_and_delete_reach_every_backend_job(aggregator, federation):
    job = merged(aggregator).create_job(out_format="GTiff", title="split to stop")
    job.start()
    document = job.describe()
    assert document["status"] in ("queued", "running")
    part = backend_jobs(document)["loadcollection2"]
    job.stop()
    assert job.describe()["status"] == "canceled"
    on_b = direct(federation.b.url).job(part.job_id).describe()["status"]
    assert on_b in ("created", "canceled", "finished")  # stopped (or done before the stop arrived)
    job.delete()
    gone = requests.get(f"{federation.b.url}/jobs/{part.job_id}", headers=token_headers(federation.b.url), timeout=30)
    assert (gone.status_code, gone.json()["code"]) == (404, "JobNotFound")
    with pytest.raises(OpenEoApiError) as raised:
        job.describe()
    assert (raised.value.http_status_code, raised.value.code) == (404, "JobNotFound")


def test_a_failing_part_ends_the_job_in_error_naming_it(aggregator):
    job = merged(aggregator, s1_bands=("HH",)).create_job(out_format="GTiff", title="split failing")
    try:
        try:
            job.start()
        except OpenEoApiError as refused:  # the part's job refused at its creation: the backend's status
            assert "HH" in refused.message and "backend 'B'" in refused.message
            return
        deadline = time.monotonic() + 120
        while (document := job.describe())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert document["status"] == "error"
        assert "loadcollection2" in document["federation:split"]["error"]
        assert "HH" in document["federation:split"]["error"]
        with pytest.raises(OpenEoApiError) as raised:
            job.get_results().get_metadata()
        assert raised.value.http_status_code == 424 and "HH" in raised.value.message
    finally:
        job.delete()


def test_overlapping_looks_start_one_primary_job(aggregator, federation):
    """Eight clients poll the job while its part finishes: every look may advance it, one primary job runs."""
    job = merged(aggregator).create_job(out_format="GTiff", title="split polled at once")
    job.start()
    deadline = time.monotonic() + 180

    def poll(_) -> str:
        connection = openeo.connect(federation.aggregator.url).authenticate_basic(*USER)
        while (status := connection.job(job.job_id).describe()["status"]) in ("queued", "running"):
            assert time.monotonic() < deadline
        return status

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(poll, range(8))) == {"finished"}
    on_a = [entry for entry in direct(federation.a.url).list_jobs(limit=None) if entry.get("title") == job.describe()["title"]]
    assert len(on_a) == 1 and on_a[0]["id"] == backend_jobs(job.describe())["primary"].job_id
    job.delete()
