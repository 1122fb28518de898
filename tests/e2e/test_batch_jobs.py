"""Batch jobs through the real openeo client against a real server and a real Dask LocalCluster."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import openeo
import pytest
import rasterio
import requests
from openeo.rest import OpenEoApiError

from backend.demo import DEMO_S2_COLLECTION
from tests.e2e.test_sync_processing import AREA

pytestmark = pytest.mark.usefixtures("job_runner")


@pytest.fixture
def connection(live_server):
    name, password = live_server.new_user()
    return openeo.connect(live_server.url).authenticate_basic(name, password)


def ndvi_composite(connection):
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA,
                                      temporal_extent=["2022-06-01", "2022-07-01"], bands=["B04", "B08"])
    return cube.ndvi(nir="B08", red="B04").reduce_dimension("t", "mean")


def big_cube(connection):
    """All dates and bands of both demo tiles: tens of seconds of work on the test machine."""
    return connection.load_collection(DEMO_S2_COLLECTION, bands=["B02", "B03", "B04", "B08", "B11"])


def wait_for(job, statuses: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metadata = job.describe()
        if metadata["status"] in statuses:
            return metadata
        time.sleep(0.2)
    raise AssertionError(f"job still {job.describe()['status']} after {timeout} s")


def test_batch_result_equals_synchronous_result(connection, tmp_path):
    cube = ndvi_composite(connection)
    cube.download(tmp_path / "sync.tif", format="GTiff")
    job = cube.create_job(out_format="GTiff", title="NDVI composite")
    assert job.describe()["status"] == "created"
    job.start_and_wait(max_poll_interval=0.5, print=lambda *_: None)

    metadata = job.describe()
    assert metadata["status"] == "finished" and metadata["progress"] == 100
    assert metadata["usage"]["duration"]["unit"] == "seconds" and metadata["usage"]["duration"]["value"] > 0
    results = job.get_results()
    assets = results.get_metadata()["assets"]
    assert set(assets) == {"result.tif", "quicklook.png"}
    assert assets["quicklook.png"]["roles"] == ["overview"] and assets["quicklook.png"]["type"] == "image/png"
    paths = results.download_files(tmp_path / "batch")
    tif = next(p for p in paths if p.name == "result.tif")
    with rasterio.open(tmp_path / "sync.tif") as sync, rasterio.open(tif) as batch:
        assert (batch.crs, batch.transform, batch.shape) == (sync.crs, sync.transform, sync.shape)
        np.testing.assert_array_equal(batch.read(), sync.read())
    assert assets["result.tif"]["file:size"] == tif.stat().st_size
    assert assets["result.tif"]["proj:epsg"] == 32632 and assets["result.tif"]["proj:shape"] == [84, 96]

    messages = [entry["message"] for entry in job.logs()]
    assert messages[0].startswith("Queued; ") and messages[-1].startswith("Finished in")
    assert [entry["message"] for entry in job.logs(level="error")] == []


def test_signed_asset_urls_work_without_token_and_refuse_tampering(connection):
    job = ndvi_composite(connection).execute_batch(out_format="GTiff", max_poll_interval=0.5, print=lambda *_: None)
    href = job.get_results().get_metadata()["assets"]["result.tif"]["href"]

    whole = requests.get(href)  # no Authorization header
    assert whole.status_code == 200 and whole.headers["Content-Type"].startswith("image/tiff")
    assert whole.headers["Access-Control-Allow-Origin"] == "*"
    head = requests.head(href)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(whole.content)
    assert head.headers["Accept-Ranges"] == "bytes"
    part = requests.get(href, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    size = len(whole.content)
    beyond = requests.get(href, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"

    url = urlsplit(href)
    query = parse_qs(url.query)
    base = f"{url.scheme}://{url.netloc}{url.path}"
    forged = requests.get(base, params={"expires": int(query["expires"][0]) + 3600, "signature": query["signature"][0]})
    assert forged.status_code == 403 and forged.json()["code"] == "ResultLinkInvalid"
    other_file = requests.get(base.replace("result.tif", "quicklook.png"), params=query)
    assert other_file.status_code == 403
    traversal = requests.get(base.replace("result.tif", "..%2F..%2Fsecret.key"), params=query)
    assert traversal.status_code in (403, 404)


def test_result_items_are_linked_and_signed(connection):
    job = ndvi_composite(connection).execute_batch(out_format="GTiff", max_poll_interval=0.5, print=lambda *_: None)
    document = job.get_results().get_metadata()
    items = {link["title"]: link["href"] for link in document["links"] if link["rel"] == "item"}
    assert set(items) == {"result.tif"}  # data files only: the quicklook has no georeferencing
    item = requests.get(items["result.tif"]).json()  # no token
    assert item["type"] == "Feature" and item["id"] == "result.tif"
    assert item["bbox"] == document["extent"]["spatial"]["bbox"][0]
    assert item["properties"]["datetime"].startswith("20")  # a composite has no dates: the run's time
    assert requests.get(item["assets"]["result.tif"]["href"]).content[:4] in (b"II*\x00", b"II+\x00")
    tampered = items["result.tif"].replace("result.tif", "quicklook.png")
    assert requests.get(tampered).status_code == 403


def test_expired_signed_url_answers_410(live_server, connection):
    job = ndvi_composite(connection).execute_batch(out_format="GTiff", max_poll_interval=0.5, print=lambda *_: None)
    signer = live_server.services.result_urls
    expired = signer.url(live_server.url, job.job_id, "result.tif", now=time.time() - signer.ttl - 10)
    response = requests.get(expired)
    assert response.status_code == 410 and response.json()["code"] == "ResultLinkExpired"


def test_results_before_finish_and_other_users(live_server, connection):
    job = ndvi_composite(connection).create_job(out_format="GTiff")
    with pytest.raises(OpenEoApiError) as failure:
        job.get_results().get_metadata()
    assert failure.value.http_status_code == 400 and failure.value.code == "JobNotFinished"

    stranger = live_server.auth_headers()
    for method, path in [("GET", ""), ("DELETE", ""), ("GET", "/results"), ("POST", "/results"), ("GET", "/logs")]:
        response = requests.request(method, f"{live_server.url}/jobs/{job.job_id}{path}", headers=stranger)
        assert response.status_code == 404 and response.json()["code"] == "JobNotFound", (method, path)
    assert job.describe()["status"] == "created"


def test_update_before_start_and_locked_while_active(connection):
    job = big_cube(connection).create_job(out_format="GTiff", title="first")
    connection.patch(f"/jobs/{job.job_id}", json={"title": "second"}, expected_status=204)
    assert job.describe()["title"] == "second"
    job.start()
    with pytest.raises(OpenEoApiError) as failure:
        connection.patch(f"/jobs/{job.job_id}", json={"title": "third"}, expected_status=204)
    assert failure.value.code == "JobLocked"
    job.stop()
    assert job.describe()["status"] == "created" and job.describe()["title"] == "second"


def test_stop_running_job_cancels_the_work(live_server, connection, job_runner):
    job = big_cube(connection).create_job(out_format="GTiff")
    job.start()
    wait_for(job, {"running"})
    time.sleep(1.0)
    job.stop()
    assert job.describe()["status"] == "created"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and job.job_id in job_runner._active:
        time.sleep(0.1)
    assert job.job_id not in job_runner._active, "the runner kept computing a stopped job"
    assert any(e["message"].startswith("Stopped") for e in job.logs())
    assert job.describe()["status"] == "created"
    assert not any((live_server.services.settings.resolved_results_dir / job.job_id).glob("run-*/*.tif"))


def test_delete_running_job(live_server, connection, job_runner):
    job = big_cube(connection).create_job(out_format="GTiff")
    job.start()
    wait_for(job, {"running"})
    job.delete()
    with pytest.raises(OpenEoApiError) as failure:
        job.describe()
    assert failure.value.code == "JobNotFound"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (job.job_id in job_runner._active
                                           or live_server.services.jobs.status_of(job.job_id) is not None):
        time.sleep(0.2)
    assert live_server.services.jobs.status_of(job.job_id) is None, "deleted job not purged"
    assert not (live_server.services.settings.resolved_results_dir / job.job_id).exists()


def test_runtime_failure_sets_error_with_useful_log(connection):
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent={"west": 0, "south": 0, "east": 1, "north": 1},
                                      temporal_extent=["2022-06-01", "2022-07-01"], bands=["B04"])
    job = cube.create_job(out_format="GTiff")
    job.start()
    metadata = wait_for(job, {"error", "finished"})
    assert metadata["status"] == "error"
    errors = job.logs(level="error")
    assert len(errors) == 1 and "outside collection" in errors[0]["message"]
    response = connection.get(f"/jobs/{job.job_id}/results", expected_status=424)
    assert response.json()["message"] == errors[0]["message"]


def test_list_jobs_pages(connection):
    ids = [ndvi_composite(connection).create_job(title=f"job {i}").job_id for i in range(5)]
    first = connection.get("/jobs", params={"limit": 2}).json()
    assert len(first["jobs"]) == 2 and "process" not in first["jobs"][0]
    seen = [job["id"] for job in first["jobs"]]
    next_link = next(link["href"] for link in first["links"] if link["rel"] == "next")
    while next_link:
        page = requests.get(next_link, headers={"Authorization": f"Bearer {connection.auth.bearer}"}).json()
        seen += [job["id"] for job in page["jobs"]]
        next_link = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert sorted(seen) == sorted(ids)
    assert {job["id"] for job in connection.list_jobs()} == set(ids)


def test_estimate_from_the_dry_run(connection):
    job = ndvi_composite(connection).create_job(out_format="GTiff")
    estimate = connection.get(f"/jobs/{job.job_id}/estimate").json()
    assert estimate["openeo:input_pixels"] == 5 * 2 * 84 * 96  # June dates × bands × rows × columns
    assert estimate["size"] == estimate["openeo:input_pixels"] * 4
    assert estimate["duration"].startswith("PT") and estimate["duration"].endswith("S")
    assert job.describe()["status"] == "created"  # nothing ran


def test_progress_grows_and_is_100_only_when_finished(connection):
    tile = {"west": 675000, "south": 5145000, "east": 687800, "north": 5157800, "crs": 32632}
    # several seconds of cluster work: the runner records progress once a second
    cube = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=tile,
                                      bands=["B02", "B03", "B04", "B08", "B11"])
    job = cube.apply(lambda x: x * 2 + 1).reduce_dimension("t", "median").create_job(out_format="GTiff")
    job.start()
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        metadata = job.describe()
        seen.append((metadata["status"], metadata.get("progress")))
        if metadata["status"] in ("finished", "error"):
            break
        time.sleep(0.1)
    assert seen[-1] == ("finished", 100)
    running = [progress for status, progress in seen if status == "running"]
    assert running == sorted(running), "progress went back"
    assert all(progress < 100 for progress in running)
    assert len(set(running)) >= 3, f"progress did not move while running: {seen}"


@pytest.fixture
def runner_settings(job_runner):
    """Change the session runner's settings for one test."""
    original = job_runner.settings

    def change(**values):
        job_runner.settings = original.model_copy(update=values)

    yield change
    job_runner.settings = original


def test_time_limit_stops_the_job_with_an_error(connection, runner_settings):
    runner_settings(job_time_limit=1.5)
    job = big_cube(connection).create_job(out_format="GTiff")
    job.start()
    metadata = wait_for(job, {"error", "finished"}, timeout=60)
    assert metadata["status"] == "error"
    (entry,) = job.logs(level="error")
    assert entry["code"] == "TimeLimitExceeded" and "time limit of 1.5 s" in entry["message"]


def test_per_user_concurrency_keeps_jobs_queued(connection, runner_settings):
    runner_settings(job_max_running_per_user=1)
    first, second = big_cube(connection).create_job(), big_cube(connection).create_job()
    first.start()
    wait_for(first, {"running"})
    second.start()
    time.sleep(2.5)  # more than two rounds of the runner's queue loop
    assert second.describe()["status"] == "queued"
    first.stop()
    wait_for(second, {"running"}, timeout=30)
    second.stop()


def test_job_survives_a_dask_worker_killed_mid_job(connection, tmp_path):
    import psutil

    tile = {"west": 675000, "south": 5145000, "east": 687800, "north": 5157800, "crs": 32632}
    slow = connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=tile, bands=["B04", "B08"])
    job = slow.ndvi(nir="B08", red="B04").reduce_dimension("t", "median").create_job(out_format="GTiff")
    job.start()
    wait_for(job, {"running"})
    workers = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    assert workers, "no LocalCluster worker processes found"
    workers[0].kill()
    metadata = wait_for(job, {"finished", "error"}, timeout=120)
    assert metadata["status"] == "finished", job.logs()
    paths = job.get_results().download_files(tmp_path / "batch")
    with rasterio.open(next(p for p in paths if p.name == "result.tif")) as result:
        values = result.read(1)
    assert np.isfinite(values).mean() > 0.9 and -1 <= np.nanmin(values) <= np.nanmax(values) <= 1


def test_inspect_writes_into_the_job_log(connection):
    cube = ndvi_composite(connection)
    inspected = cube.process("inspect", data=cube, message="composite ready", code="Checkpoint", level="warning")
    job = inspected.execute_batch(out_format="GTiff", max_poll_interval=0.5, print=lambda *_: None)
    (entry,) = [e for e in job.logs(level="warning") if e.get("code") == "Checkpoint"]
    assert entry["message"] == "composite ready"
    assert entry["data"]["type"] == "datacube"
    assert (entry["data"]["dimensions"]["y"], entry["data"]["dimensions"]["x"]) == (84, 96)


def test_starting_a_finished_job_runs_it_again(connection, live_server):
    job = ndvi_composite(connection).execute_batch(out_format="GTiff", max_poll_interval=0.5, print=lambda *_: None)
    first_run = live_server.services.jobs.published(job.job_id)["run"]
    job.start()  # per spec: queued again, previous results discarded
    assert job.describe()["status"] in ("queued", "running", "finished")
    wait_for(job, {"finished"})
    second_run = live_server.services.jobs.published(job.job_id)["run"]
    assert second_run != first_run
    runs = [p.name for p in (live_server.services.settings.resolved_results_dir / job.job_id).iterdir()]
    assert runs == [second_run]
    assert sum(e["message"].startswith("Queued") for e in job.logs()) == 2
