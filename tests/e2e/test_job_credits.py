"""Credits of batch jobs: holds at start, charges from measured usage, budgets, releases."""

from __future__ import annotations

import time

import openeo
import pytest
import requests
from openeo.rest import OpenEoApiError

from backend.demo import DEMO_S2_COLLECTION
from tests.e2e.test_batch_jobs import big_cube, ndvi_composite, wait_for
from tests.e2e.test_sync_processing import AREA

pytestmark = pytest.mark.usefixtures("job_runner")


@pytest.fixture
def user(live_server):
    name, password = live_server.new_user()
    connection = openeo.connect(live_server.url).authenticate_basic(name, password)
    return connection, connection.describe_account()["user_id"]


def balance(connection) -> float:
    return connection.describe_account()["budget"]


def test_finished_job_is_charged_its_measured_costs(user, live_server):
    connection, user_id = user
    job = ndvi_composite(connection).create_job(out_format="GTiff")
    estimate = connection.get(f"/jobs/{job.job_id}/estimate").json()
    assert estimate["costs"] >= 1.0
    job.start_and_wait(max_poll_interval=0.5, print=lambda *_: None)
    metadata = job.describe()
    usage = metadata["usage"]
    assert usage["input"] == {"value": 0.081, "unit": "megapixel"}  # 5 dates × 2 bands × 84 × 96
    assert usage["cpu"]["value"] > 0 and usage["duration"]["value"] > 0
    plan = live_server.services.settings.plans[0]
    assert metadata["costs"] == pytest.approx(plan.costs(usage), abs=1e-3)
    assert balance(connection) == pytest.approx(1000 - metadata["costs"], abs=1e-3)
    ledger = live_server.services.ledger
    assert ledger.balance(user_id) == pytest.approx(ledger.sum_of_entries(user_id))


def test_budget_stops_the_job(user, live_server):
    connection, user_id = user
    job = big_cube(connection).create_job(out_format="GTiff", budget=1.2)
    job.start()
    metadata = wait_for(job, {"error", "finished"}, timeout=90)
    assert metadata["status"] == "error"
    (entry,) = job.logs(level="error")
    assert entry["code"] == "BudgetExceeded" and "budget of 1.2 credits" in entry["message"]
    assert metadata["costs"] <= 1.2
    assert balance(connection) == pytest.approx(1000 - metadata["costs"], abs=1e-3)


def test_deleting_a_queued_job_releases_its_hold(user, live_server, job_runner):
    connection, user_id = user
    original = job_runner.settings
    job_runner.settings = original.model_copy(update={"job_max_running_per_user": 1})
    try:
        first, second = big_cube(connection).create_job(), big_cube(connection).create_job()
        first.start()
        wait_for(first, {"running"})
        second.start()
        assert second.describe()["status"] == "queued"
        assert balance(connection) < 1000 - 2  # both hold at least the fixed fee
        second.delete()
        first.stop()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and first.describe().get("costs") is None:
            time.sleep(0.2)
    finally:
        job_runner.settings = original
    costs_of_first = first.describe()["costs"]
    assert balance(connection) == pytest.approx(1000 - costs_of_first, abs=1e-3)  # nothing else kept


def charges(live_server, user_id: str, note_start: str) -> list[float]:
    return [-entry.amount for entry in live_server.services.ledger.entries(user_id)
            if entry.kind == "charge" and (entry.note or "").startswith(note_start)]


def test_a_failure_caused_by_the_user_pays_its_usage_without_the_fixed_fee(user, live_server):
    """One rule for jobs and synchronous requests: the same user error (an unknown band) costs the
    usage terms only, in a batch job as in POST /result."""
    connection, user_id = user
    plan = live_server.services.settings.plans[0]
    graph = {"process_graph": {  # as a plain graph: the client would refuse the unknown band itself
        "load": {"process_id": "load_collection", "arguments": {
            "id": DEMO_S2_COLLECTION, "spatial_extent": AREA, "temporal_extent": ["2022-06-01", "2022-07-01"],
            "bands": ["B99"]}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                 "result": True}}}
    job = connection.create_job(graph)
    job.start()
    metadata = wait_for(job, {"error"})
    (entry,) = job.logs(level="error")
    assert entry["code"] == "ProcessParameterInvalid" and "B99" in entry["message"]
    usage_terms = round(plan.costs(metadata["usage"]) - plan.fixed_fee, 3)
    assert metadata["costs"] == usage_terms < plan.fixed_fee
    assert charges(live_server, user_id, f"job {job.job_id} failed") == [usage_terms]
    with pytest.raises(OpenEoApiError) as failure:
        connection.download(graph)
    assert failure.value.http_status_code == 400 and failure.value.code == "ProcessParameterInvalid"
    assert charges(live_server, user_id, "POST /result failed") == [0.0]  # it failed before using anything
    assert balance(connection) == pytest.approx(1000 - usage_terms, abs=1e-3)
    ledger = live_server.services.ledger
    assert ledger.balance(user_id) == pytest.approx(ledger.sum_of_entries(user_id))


def test_a_job_stopped_by_the_time_limit_pays_its_usage_without_the_fixed_fee(user, live_server, job_runner):
    connection, user_id = user
    plan = live_server.services.settings.plans[0]
    original = job_runner.settings
    job_runner.settings = original.model_copy(update={"job_time_limit": 1.5})
    try:
        job = big_cube(connection).create_job(out_format="GTiff")
        job.start()
        metadata = wait_for(job, {"error", "finished"}, timeout=60)
    finally:
        job_runner.settings = original
    assert metadata["status"] == "error" and job.logs(level="error")[0]["code"] == "TimeLimitExceeded"
    usage_terms = round(plan.costs(metadata["usage"]) - plan.fixed_fee, 3)
    assert usage_terms > 0 and metadata["costs"] == usage_terms  # it loaded and computed for 1.5 s
    assert charges(live_server, user_id, f"job {job.job_id} failed") == [usage_terms]
    assert balance(connection) == pytest.approx(1000 - usage_terms, abs=1e-3)


def test_start_without_credits_is_402_and_bad_budgets_are_refused(user, live_server):
    connection, user_id = user
    with pytest.raises(OpenEoApiError) as failure:
        ndvi_composite(connection).create_job(budget=0.5)
    assert failure.value.code == "BudgetInvalid"
    with pytest.raises(OpenEoApiError) as failure:
        ndvi_composite(connection).create_job(plan="gold")
    assert failure.value.code == "BillingPlanInvalid"
    job = ndvi_composite(connection).create_job()
    live_server.services.ledger.grant(user_id, -1000)
    with pytest.raises(OpenEoApiError) as failure:
        job.start()
    assert failure.value.http_status_code == 402 and failure.value.code == "PaymentRequired"
    assert job.describe()["status"] == "created"
    response = requests.patch(f"{live_server.url}/jobs/{job.job_id}", json={"budget": -3},
                              headers={"Authorization": f"Bearer {connection.auth.bearer}"})
    assert response.status_code == 400 and response.json()["code"] == "BudgetInvalid"
