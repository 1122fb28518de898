"""Records of federated jobs and their runs' costs charged once (aggregator/storage/job_records.py,
aggregator/services/job_charges.py, aggregator/jobs/costs.py), on SQLite and PostgreSQL: repeated and
concurrent looks, a restarted aggregator (new objects on the same database), a new run charged again, a
look that may show the previous run charging nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from aggregator.accounting import FederationAccounting
from aggregator.jobs import ids
from aggregator.jobs.costs import due_costs, run_ref
from aggregator.services.job_charges import JobCharges
from aggregator.storage.job_records import JobRecords, job_key
from backend.storage.models import utcnow
from tests.aggregator.accounting.test_federation_ledger import PLANS, new_caller, reconcile

JOB = ids.BackendJobRef("A", "job-1")


def charges_on(db) -> JobCharges:
    """A fresh service's objects on ``db`` (what a restarted aggregator has)."""
    return JobCharges(FederationAccounting(db, PLANS, free_credits=100), JobRecords(db))


def look(charges: JobCharges, caller, document: dict, ref: ids.BackendJobRef = JOB) -> None:
    """What GET /jobs/{id} does: note the time, read the record, (fetch the document), charge."""
    seen_from = utcnow()
    record = charges.records.get(caller.user_id, [ref.federated_id]).get(ref.federated_id)
    charges.charge_due(caller, ref, document, record, seen_from)


@pytest.mark.parametrize("document, due", [
    ({"status": "finished", "costs": 2.5}, 2.5),
    ({"status": "error", "costs": "0.75"}, 0.75),
    ({"status": "created", "costs": 1}, 1.0),  # stopped while it ran: our backend charges what it used
    ({"status": "canceled", "costs": 3}, 3.0),
    ({"status": "running", "costs": 2}, None),
    ({"status": "queued", "costs": 2}, None),
    ({"status": "finished"}, None),
    ({"status": "finished", "costs": 0}, None),
    ({"status": "finished", "costs": "lots"}, None),
    ({"status": "finished", "costs": -4}, None),
    ({"costs": 1}, None),
])
def test_due_costs(document, due):
    assert due_costs(document) == due


def test_records_keep_the_reason_and_count_runs(db):
    records = JobRecords(db)
    owner, other = new_caller(db), new_caller(db)
    fid = JOB.federated_id
    records.add(owner.user_id, fid, "A", "A offers SENTINEL2_L2A_DEMO")
    (record,) = records.get(owner.user_id, [fid, ids.encode("A", "never-seen")]).values()
    assert (record.backend_id, record.reason, record.run, record.run_started, record.charged_run) == (
        "A", "A offers SENTINEL2_L2A_DEMO", 0, None, None)
    assert records.get(other.user_id, [fid]) == {}
    before = utcnow()
    assert [records.next_run(owner.user_id, fid, "A") for _ in range(3)] == [1, 2, 3]
    record = records.get(owner.user_id, [fid])[fid]
    assert record.run == 3 and record.started_since(before - timedelta(seconds=1))
    assert not record.started_since(utcnow() + timedelta(seconds=1))
    records.mark_charged(owner.user_id, fid, "A", 3)
    assert records.get(owner.user_id, [fid])[fid].charged_run == 3
    records.add(owner.user_id, fid, "A", "again")  # a second add keeps the runs
    assert records.get(owner.user_id, [fid])[fid].run == 3


def test_a_long_federated_id_is_kept_under_its_hash(db):
    records = JobRecords(db)
    caller = new_caller(db)
    fid = ids.encode("A", "x" * 400)
    assert len(job_key(fid)) <= 255 and job_key(fid) != job_key(ids.encode("A", "x" * 401))
    assert records.next_run(caller.user_id, fid, "A") == 1
    assert records.get(caller.user_id, [fid])[fid].run == 1


def test_a_runs_costs_are_charged_once_across_looks_threads_and_restarts(db):
    caller = new_caller(db)
    finished = {"status": "finished", "costs": 4.25}
    charges = charges_on(db)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: look(charges_on(db), caller, finished), range(16)))
    for _ in range(3):
        look(charges, caller, finished)
        look(charges_on(db), caller, finished)  # a restarted aggregator
    assert reconcile(charges.accounting, caller) == pytest.approx(100 - 4.25)
    assert charges.accounting.ledger.charged(f"fed-job:A:{run_ref(JOB.federated_id, 0)}") == 4.25


def test_each_run_is_charged_and_a_look_at_a_stale_run_charges_nothing(db):
    caller = new_caller(db)
    charges = charges_on(db)
    fid = JOB.federated_id
    charges.records.add(caller.user_id, fid, "A", "routed")
    charges.records.next_run(caller.user_id, fid, "A")
    look(charges, caller, {"status": "running", "costs": 1})
    look(charges, caller, {"status": "finished", "costs": 2})
    look(charges, caller, {"status": "finished", "costs": 2})
    assert reconcile(charges.accounting, caller) == pytest.approx(98)

    # a look that began before the next start went through may show the previous run: nothing charged
    seen_from = utcnow()
    charges.records.next_run(caller.user_id, fid, "A")
    record = charges.records.get(caller.user_id, [fid])[fid]
    charges.charge_due(caller, JOB, {"status": "finished", "costs": 2}, record, seen_from)
    assert reconcile(charges.accounting, caller) == pytest.approx(98)

    look(charges, caller, {"status": "queued"})
    look(charges, caller, {"status": "finished", "costs": 3.5})
    look(charges, caller, {"status": "finished", "costs": 3.5})
    assert reconcile(charges.accounting, caller) == pytest.approx(94.5)
    rows = charges.accounting.usage_report(user_id=caller.user_id)
    assert [(row["backend"], row["jobs"], row["credits"]) for row in rows] == [("A", 2, 5.5)]


def test_a_job_never_started_through_the_aggregator_is_charged_as_run_0(db):
    caller = new_caller(db)
    charges = charges_on(db)
    other = ids.BackendJobRef("B", "made-on-b")
    look(charges, caller, {"status": "error", "costs": 0.5}, other)
    look(charges, caller, {"status": "error", "costs": 0.5}, other)
    assert reconcile(charges.accounting, caller) == pytest.approx(99.5)
    assert charges.records.get(caller.user_id, [other.federated_id])[other.federated_id].charged_run == 0
