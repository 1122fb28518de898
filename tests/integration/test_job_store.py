"""The job store's lease protocol on SQLite and on a real PostgreSQL server: claims, heartbeats, recovery."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from apicore import errors
from backend.jobs.logs import JobLogs
from backend.jobs.store import JobStore, utcnow
from backend.storage.models import Job
from backend.storage.users import UserStore

PROCESS = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


@pytest.fixture
def store(db) -> JobStore:
    return JobStore(db)


def new_user(db) -> str:
    return UserStore(db).add(f"u{time.monotonic_ns()}", "pw").user_id


def queued(store: JobStore, user: str, count: int = 1) -> list[str]:
    ids = []
    for _ in range(count):
        job = store.create(user, PROCESS)
        store.start(user, job.job_id)
        ids.append(job.job_id)
    return ids


def test_concurrent_runners_claim_each_job_once(db, store):
    user = new_user(db)
    ids = queued(store, user, 12)
    claims: list[str] = []
    lock = threading.Lock()

    def runner(name: str):
        while True:
            claim = store.claim(name, lease=30, max_running_per_user=100)
            if claim is None:
                return
            with lock:
                claims.append(claim.job_id)

    threads = [threading.Thread(target=runner, args=(f"runner-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claims) == sorted(ids)  # every job exactly once


def test_per_user_concurrency_limit(db, store):
    alice, bob = new_user(db), new_user(db)
    queued(store, alice, 3)
    bob_job = queued(store, bob, 1)[0]
    first = store.claim("r", 30, max_running_per_user=1)
    second = store.claim("r", 30, max_running_per_user=1)
    assert first.user_id == alice and second.job_id == bob_job  # alice's other jobs wait for her first one
    assert store.claim("r", 30, max_running_per_user=1) is None  # alice has one running, bob has none left
    assert store.running_count(alice) == 1 and store.running_count(bob) == 1


def test_stopped_job_is_lost_by_its_runner(db, store):
    user = new_user(db)
    job_id = queued(store, user)[0]
    claim = store.claim("r1", 30, 5)
    assert store.heartbeat("r1", job_id, 30, progress=40)
    assert store.stop(user, job_id) == "running"
    assert not store.heartbeat("r1", job_id, 30, progress=50)  # the runner learns it lost the job
    assert not store.finish("r1", job_id, {"run": "x", "assets": {}}, {})  # and cannot publish
    job = store.get(user, job_id)
    assert (job.status, job.results) == ("created", None)
    assert claim.attempt == 1


def test_progress_never_goes_back(db, store):
    user = new_user(db)
    job_id = queued(store, user)[0]
    store.claim("r", 30, 5)
    store.heartbeat("r", job_id, 30, progress=60)
    store.heartbeat("r", job_id, 30, progress=20)
    assert store.get(user, job_id).progress == 60


def test_expired_lease_is_requeued_then_failed(db, store):
    user = new_user(db)
    job_id = queued(store, user)[0]
    for attempt in (1, 2):
        claim = store.claim("dead-runner", 30, 5)
        assert claim.attempt == attempt
        with db.session() as session:  # the runner died: nobody renews the lease
            session.execute(update(Job).where(Job.job_id == job_id)
                            .values(lease_expires=utcnow() - timedelta(seconds=1)))
        assert store.expired_leases() == [(job_id, attempt)]
        assert store.recover(job_id, requeue=attempt < 2)
        assert not store.recover(job_id, requeue=True)  # a second recoverer finds nothing to do
    job = store.get(user, job_id)
    assert job.status == "error" and job.lease_owner is None
    assert not store.heartbeat("dead-runner", job_id, 30, None)  # a runner coming back cannot revive it


def test_owner_only_and_locked_updates(db, store):
    alice, bob = new_user(db), new_user(db)
    job_id = store.create(alice, PROCESS, title="t").job_id
    with pytest.raises(errors.JobNotFound):
        store.get(bob, job_id)
    with pytest.raises(errors.JobNotFound):
        store.start(bob, job_id)
    store.update(alice, job_id, {"title": "new"})
    store.start(alice, job_id)
    assert store.start(alice, job_id) is False  # queued already: no effect
    with pytest.raises(errors.JobLocked):
        store.update(alice, job_id, {"title": "newer"})
    store.delete(alice, job_id)
    with pytest.raises(errors.JobNotFound):
        store.get(alice, job_id)
    assert job_id in store.deleted_jobs()
    store.purge(job_id)
    assert store.status_of(job_id) is None


def test_log_paging_and_levels(db, store):
    user = new_user(db)
    job_id = store.create(user, PROCESS).job_id
    logs = JobLogs(db)
    for index, level in enumerate(["debug", "info", "warning", "error", "info"]):
        logs.append(job_id, level, f"m{index}", min_level="info")  # the debug entry is not stored
    everything, more = logs.read(job_id, None, "debug", None)
    assert [e["message"] for e in everything] == ["m1", "m2", "m3", "m4"] and not more
    page, more = logs.read(job_id, None, "debug", 2)
    assert [e["message"] for e in page] == ["m1", "m2"] and more
    rest, more = logs.read(job_id, page[-1]["id"], "debug", 2)
    assert [e["message"] for e in rest] == ["m3", "m4"] and not more
    warnings, _ = logs.read(job_id, None, "warning", None)
    assert [e["level"] for e in warnings] == ["warning", "error"]
    assert logs.last_error(job_id)["message"] == "m3"
