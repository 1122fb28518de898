"""The job runner: claims queued jobs from the database and runs them on the Dask cluster.

Several runners may share one database (``openeo-backend worker`` on several machines, plus the one
``serve`` starts). Each loop: recover jobs whose runner died (expired lease → queued again, or error
after ``job_max_attempts``), purge deleted jobs, claim queued jobs while a slot is free. A heartbeat
thread renews the leases of the running jobs, records their progress, enforces the time limit and
cancels jobs that were stopped or deleted through the API (the lease is gone → the Dask work stops).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from apicore import errors
from backend.accounting.abandoned_holds import release_abandoned_request_holds, request_hold_lifetime
from backend.jobs import billing
from backend.jobs.cluster import Cluster, ClusterStream, JobCanceled
from backend.jobs.execution import execute_job
from backend.jobs.estimate import input_pixels
from backend.jobs.failures import describe_failure
from backend.jobs.logs import JobLogs
from backend.jobs.storage import StorageFailure
from backend.jobs.store import Claim, JobStore
from backend.processing.engine.executor import RunContext
from backend.settings import API_PREFIX
from backend.storage.db import UNAVAILABLE

log = logging.getLogger(__name__)
SHUTDOWN = "the job runner shut down"
REMOVAL_RETRY_PAUSES = (0.5, 2.0)  # seconds between attempts to remove a re-run job's previous runs


@dataclass
class ActiveJob:
    claim: Claim
    stream: ClusterStream
    started: float = field(default_factory=time.monotonic)
    time_limited: bool = False
    over_budget: bool = False
    context: RunContext | None = None


class JobRunner:
    def __init__(self, services: Any, cluster: Cluster | None = None, owner: str | None = None):
        self.services = services
        self.settings = services.settings
        self.store = JobStore(services.db)
        self.logs = JobLogs(services.db)
        self.ledger = services.ledger
        self.results = services.results
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._cluster = cluster
        self._own_cluster = cluster is None
        self._active: dict[str, ActiveJob] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._hold_lifetime = request_hold_lifetime(self.settings)
        self._next_hold_sweep = 0.0

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self) -> "JobRunner":
        if self._cluster is None:
            self._cluster = Cluster(self.settings)
        for target in (self._loop, self._heartbeat_loop, self._progress_loop):
            thread = threading.Thread(target=target, name=f"job-runner-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("job runner %s started (%s)", self.owner, self.settings.dask_scheduler or "LocalCluster")
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop claiming; give running jobs back to the queue (another runner continues them)."""
        self._stop.set()
        with self._lock:
            active = list(self._active.values())
        for job in active:
            job.stream.cancel(SHUTDOWN)
            if self.store.release(self.owner, job.claim.job_id):
                self._log(job.claim, "warning", "The job runner shut down; the job was queued again.")
        for thread in self._threads:
            thread.join(timeout)
        if self._own_cluster and self._cluster is not None:
            self._cluster.close()

    # --- the queue -----------------------------------------------------------------------------------

    def _loop(self) -> None:
        database_down = False  # an outage is logged once, not with a traceback per poll
        while not self._stop.is_set():
            try:
                self.poll_once()
                if database_down:
                    log.warning("job runner: the database is reachable again")
                database_down = False
            except UNAVAILABLE as exc:
                if not database_down:
                    log.warning("job runner: the database cannot be reached (%s); retrying every %s s",
                                type(exc).__name__, self.settings.job_poll_interval)
                database_down = True
            except Exception:  # noqa: BLE001 - any other failure: try again next round
                log.exception("job runner loop failed; retrying")
            self._stop.wait(self.settings.job_poll_interval)

    def poll_once(self) -> None:
        self._recover_expired()
        self._purge_deleted()
        self._release_abandoned_holds()
        while not self._stop.is_set():
            with self._lock:
                if len(self._active) >= self.settings.job_slots:
                    return
            claim = self.store.claim(self.owner, self.settings.job_lease_seconds,
                                     self.settings.job_max_running_per_user)
            if claim is None:
                return
            log.info("job %s claimed (attempt %s)", claim.job_id, claim.attempt)
            job = ActiveJob(claim, ClusterStream(self._cluster.client))
            with self._lock:
                self._active[claim.job_id] = job
            threading.Thread(target=self._run, args=(job,), name=f"job-{claim.job_id}", daemon=True).start()

    def _recover_expired(self) -> None:
        max_attempts = self.settings.job_max_attempts
        for job_id, attempts in self.store.expired_leases():
            with self._lock:
                if job_id in self._active:  # ours, only late to renew (e.g. a long GIL-holding pickle)
                    continue
            requeue = attempts < max_attempts
            if not self.store.recover(job_id, requeue):
                continue
            what = (f"The runner executing this job stopped responding (it crashed, was killed or lost its "
                    f"database connection) during attempt {attempts} of {max_attempts}.")
            if requeue:
                self.logs.append(job_id, "warning", what + " The job was queued again and starts from the beginning.")
            else:
                billing.release_hold(self.store, self.ledger, job_id, "runner lost too often (not charged)")
                self._remove_lost_runs(job_id)
                self.logs.append(job_id, "error", what + " The job was not retried again. Start it again; if it "
                                 "fails the same way, reduce its size (extent, dates, bands).", code="RunnerLost")
            log.warning("job %s: lease expired after attempt %s (%s)", job_id, attempts,
                        "re-queued" if requeue else "failed")

    def _remove_lost_runs(self, job_id: str) -> None:
        """The files the dead runners' attempts of a failed job wrote (never published; the job is `error` now, so a
        new run starts only once its user starts it again)."""
        try:
            self.results.remove_runs(job_id)
        except Exception:  # noqa: BLE001 - the store is unreachable: a re-run or deleting the job removes them
            log.warning("removing the runs of failed job %s failed", job_id, exc_info=True)

    def _release_abandoned_holds(self) -> None:
        """Holds of synchronous requests and tiles whose web worker died before settling (a few times per
        hold lifetime: the query reads the request holds of the ledger)."""
        now = time.monotonic()
        if now < self._next_hold_sweep:
            return
        self._next_hold_sweep = now + max(1.0, self._hold_lifetime.total_seconds() / 4)
        release_abandoned_request_holds(self.ledger, self._hold_lifetime)

    def _purge_deleted(self) -> None:
        for job_id in self.store.deleted_jobs():
            with self._lock:
                active = self._active.get(job_id)
            if active is not None:
                active.stream.cancel("the job was deleted")
                continue
            try:
                self.results.remove_runs(job_id)
            except Exception:  # noqa: BLE001 - store unreachable: keep the row (it names the files), retry later
                log.warning("removing the results of deleted job %s failed; retrying", job_id, exc_info=True)
                continue
            # a no-op when the job's run settled its hold already
            billing.release_hold(self.store, self.ledger, job_id, "job deleted")
            self.store.purge(job_id)

    # --- heartbeat -----------------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = max(0.2, self.settings.job_lease_seconds / 3)
        while not self._stop.wait(min(interval, 1.0)):
            with self._lock:
                active = list(self._active.values())
            for job in active:
                try:
                    self._beat(job)
                except UNAVAILABLE as exc:  # the poll loop reports the outage; a missed beat is retried
                    log.debug("heartbeat for job %s failed: %s", job.claim.job_id, type(exc).__name__)
                except Exception:  # noqa: BLE001 - a missed beat is retried; the lease outlives a few
                    log.exception("heartbeat for job %s failed", job.claim.job_id)

    def _progress_loop(self) -> None:
        """Task counts from the scheduler, in a thread of their own: a slow scheduler answer must never
        delay a lease renewal."""
        while not self._stop.wait(1.0):
            with self._lock:
                active = list(self._active.values())
            for job in active:
                try:
                    job.stream.poll_tasks()
                except Exception:  # noqa: BLE001 - progress is informative; the job goes on without it
                    log.debug("progress poll for job %s failed", job.claim.job_id, exc_info=True)

    def _beat(self, job: ActiveJob) -> None:
        # 1 % for starting, 95 % for the cluster work, the rest for writing and publishing
        progress = round(1 + 95 * job.stream.fraction, 1)
        if not self.store.heartbeat(self.owner, job.claim.job_id, self.settings.job_lease_seconds, progress):
            job.stream.cancel("the job was stopped or deleted")
        elif time.monotonic() - job.started > self.settings.job_time_limit:
            job.time_limited = True
            job.stream.cancel("time limit")
        elif job.claim.budget is not None and job.context is not None and billing.running_costs(
                self.settings.plans, job.claim, self._usage(job, 0)) >= job.claim.budget:
            job.over_budget = True
            job.stream.cancel("budget")

    # --- one job -------------------------------------------------------------------------------------

    def _run(self, job: ActiveJob) -> None:
        claim = job.claim
        run_dir = None
        try:
            self._log(claim, "info", f"Started on runner {self.owner} (attempt {claim.attempt}).")
            job.context = RunContext(user_id=claim.user_id, services=self.services, api_root=self._api_root(),
                                     udp_lookup=lambda process_id: self.services.udps.get(claim.user_id, process_id),
                                     log=lambda level, message, **extra: self._log(claim, level, message, **extra))
            # inside the try: a full disk already here must fail the job, not leave it running for ever
            run_id, run_dir = self.results.new_run(claim.job_id)
            assets, provenance = execute_job(claim.process, job.context, self.services.implementations, job.stream, run_dir,
                                 self.settings.dask_threads_per_worker * self.settings.dask_workers,
                                 lambda level, message: self._log(claim, level, message))
            usage = self._usage(job, sum(a.get("file:size", 0) for a in assets.values()))
            finished = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            published = {"run": run_id, "assets": assets, "finished": finished,
                         "provenance": provenance.stac_fields(), "derived_from": provenance.derived_from_links()}
            # a remote store gets the files before the run becomes visible: nothing partial is ever listed
            self.results.publish(claim.job_id, run_id, run_dir)
            costs = billing.settle(self.ledger, self.settings.plans, claim, usage)
            if self.store.finish(self.owner, claim.job_id, published, usage, costs):
                self._remove_previous_runs(claim.job_id, run_id)
                for owner_id, process_id in job.context.published_calls:
                    self.services.udps.record_run(owner_id, process_id, costs)
                self._log(claim, "info", f"Finished in {usage['duration']['value']:.1f} s: {', '.join(assets)}; "
                                         f"costs {costs:g} credits.")
            else:  # stopped, deleted or re-queued meanwhile: this run's files are not wanted
                self._discard(run_dir)
        except JobCanceled as exc:
            self._discard(run_dir)
            if exc.reason == SHUTDOWN:
                return  # queued again: the hold stays for the next attempt
            usage = self._usage(job, 0)
            code = "TimeLimitExceeded" if job.time_limited else "BudgetExceeded" if job.over_budget else None
            costs = billing.settle(self.ledger, self.settings.plans, claim, usage, code)  # code None: stopped
            if job.time_limited:
                self._fail(claim, f"The job ran longer than the time limit of {self.settings.job_time_limit:g} s "
                                  "and was stopped. Split it into smaller jobs (extent, dates).", "TimeLimitExceeded",
                           usage, costs)
            elif job.over_budget:
                self._fail(claim, f"The job's costs reached its budget of {claim.budget:g} credits and it was "
                                  "stopped. Raise the budget (PATCH /jobs/{id}) or make the job smaller.",
                           "BudgetExceeded", usage, costs)
            else:
                self.store.record_costs(claim.job_id, usage, costs)
                self._log(claim, "info", f"Stopped: {exc.reason}; costs {costs:g} credits.")
        except StorageFailure as exc:
            self._discard(run_dir)
            self._fail_settled(job, str(exc), "StorageFailure")
        except errors.OpenEOError as exc:
            self._discard(run_dir)
            self._fail_settled(job, exc.message, exc.code, exc.status)
        except Exception as exc:  # noqa: BLE001 - every failure ends as a job error with a useful log entry
            # described before the run's files are removed: they may be what filled the disk
            message, code = describe_failure(exc, self.settings, lambda: input_pixels(
                claim.process, self.services.collections, self._api_root()),
                lambda: shutil.disk_usage(run_dir or self.results.local_root).free)
            self._discard(run_dir)
            if code == "Internal":
                log.exception("job %s failed", claim.job_id)
            self._fail_settled(job, message, code)
        finally:
            job.stream.close()
            with self._lock:
                self._active.pop(claim.job_id, None)

    def _usage(self, job: ActiveJob, output_bytes: int) -> dict:
        values = job.context.input_values if job.context is not None else 0
        return billing.measured_usage(job.stream, values, time.monotonic() - job.started, output_bytes)

    def _fail_settled(self, job: ActiveJob, message: str, code: str, status: int | None = None) -> None:
        """Fail the job and settle its hold: its usage when the user caused the failure, else nothing."""
        usage = self._usage(job, 0)
        costs = billing.settle(self.ledger, self.settings.plans, job.claim, usage, code, status)
        self._fail(job.claim, message, code, usage, costs)

    def _fail(self, claim: Claim, message: str, code: str, usage: dict | None = None,
              costs: float | None = None) -> None:
        # The entry first: clients read the logs as soon as they see the status `error`.
        self._log(claim, "error", message, code=code)
        self.store.fail(self.owner, claim.job_id, usage, costs)

    def _log(self, claim: Claim, level: str, message: str, **extra: Any) -> None:
        self.logs.append(claim.job_id, level, message, min_level=claim.log_level, **extra)

    def _discard(self, run_dir) -> None:
        # run dirs are <local root>/<job id>/<run id>; a remote store also drops what was uploaded
        if run_dir is not None:  # None: the run directory could not even be made
            self.results.discard(run_dir.parent.name, run_dir.name, run_dir)

    def _remove_previous_runs(self, job_id: str, run_id: str) -> None:
        for attempt, pause in enumerate(REMOVAL_RETRY_PAUSES + (None,), start=1):
            try:
                self.results.remove_runs(job_id, keep=run_id)
                return
            except Exception:  # noqa: BLE001 - the job is finished; old runs go when it is re-run or deleted
                if pause is None:
                    log.warning("removing previous runs of job %s failed %d times", job_id, attempt, exc_info=True)
                    return
                log.info("removing previous runs of job %s failed; retrying", job_id, exc_info=True)
                time.sleep(pause)

    def _api_root(self) -> str:
        public = self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}"
        return public.rstrip("/") + API_PREFIX
