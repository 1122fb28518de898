"""Credits of batch jobs: the hold placed at start, and what the runner charges when the job ends.

Starting a job holds min(estimated costs × ``hold_safety_factor``, budget, balance) — at least the
plan's fixed fee, else 402. The hold's ledger ``ref`` is new for every start (``Job.billing_ref``), so a
re-run is billed on its own. When the job ends:
- finished, or stopped by its user: the measured costs are charged, capped by the hold;
- failed for a reason the user can change (an openEO 4xx error of a process, the time limit, the budget,
  out of memory): its measured usage without the fixed fee — the rule of failed synchronous requests
  (``accounting.pricing.failure_costs``);
- failed because of the backend (internal error, storage, cluster, runner lost too often): released.
A runner that dies keeps the hold in place; the next attempt settles it once (settlements are
idempotent), and a job failed after too many lost runners is released.
"""

from __future__ import annotations

from typing import Any

from apicore import errors
from backend.accounting.holds import place_hold
from backend.accounting.ledger import Ledger
from backend.accounting.pricing import Plan, caused_by_user, failure_costs, plan_for, usage_document
from backend.jobs.estimate import input_pixels


def estimated_costs(process: dict, plan: Plan, services: Any, api_root: str) -> float:
    """Costs of the job's dry run: input pixels → CPU seconds at the measured batch throughput."""
    settings = services.settings
    try:
        values = input_pixels(process, services.collections, api_root)
    except errors.OpenEOError:
        return plan.fixed_fee  # the job will fail when it runs, and say why in its log

    cpu = values / 1e6 * settings.job_seconds_per_megapixel * settings.dask_workers * settings.dask_threads_per_worker
    return plan.costs(usage_document(cpu, 0.0, values, 0.0, 0))


def hold_for_start(services: Any, job: Any, user_id: str, ref: str, api_root: str) -> float:
    settings = services.settings
    plan = plan_for(settings.plans, job.plan)
    wanted = estimated_costs(job.process, plan, services, api_root) * settings.hold_safety_factor
    return place_hold(services.ledger, user_id, ref, plan, job.budget, wanted)


def measured_usage(stream: Any, input_values: int, seconds: float, output_bytes: int) -> dict:
    return usage_document(stream.cpu_seconds, stream.memory_gb_seconds, input_values, seconds, output_bytes)


def settle(ledger: Ledger, plans: list[Plan], claim: Any, usage: dict, code: str | None = None,
           status: int | None = None) -> float:
    """Settle the claim's hold; returns the credits charged. ``code`` None: the job finished (or its user
    stopped it): its costs. Else it failed with that code (``status``: the openEO error's HTTP status,
    when it is one) and pays what a failed synchronous request pays (``failure_costs``)."""
    if not claim.billing_ref:
        return 0.0
    plan = plan_for(plans, claim.plan)
    if code is None:
        return ledger.settle(claim.user_id, claim.billing_ref, plan.costs(usage), note=f"job {claim.job_id}")
    if not caused_by_user(code, status):
        ledger.release(claim.user_id, claim.billing_ref, note=f"job {claim.job_id} failed: {code} (not charged)")
        return 0.0
    return ledger.settle(claim.user_id, claim.billing_ref, failure_costs(plan, usage, True),
                         note=f"job {claim.job_id} failed: {code} (usage without the fixed fee)")


def running_costs(plans: list[Plan], claim: Any, usage: dict) -> float:
    return plan_for(plans, claim.plan).costs(usage)


def release_hold(store: Any, ledger: Ledger, job_id: str, note: str) -> None:
    """Give back what the job's current hold still reserves (a no-op once its run settled it)."""
    billing_of = store.billing_of(job_id)
    if billing_of is not None and billing_of[1]:
        ledger.release(billing_of[0], billing_of[1], note=f"job {job_id}: {note}")
