"""Plans and the one pricing formula: costs from measured usage.

    costs = fixed_fee + cpu_seconds × per_cpu_second + memory_gb_seconds × per_gb_second
            + input_megapixels × per_megapixel

per plan (settings ``plans``; the first one is the default). Usage is measured, not guessed: CPU
seconds and memory GB-seconds from Dask (the threads' CPU time in the tasks, and bytes of task results
held × seconds), input megapixels from the cubes the graph loaded. A failed request or job pays
``failure_costs``: its usage terms when the user caused the failure, nothing when the backend did.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from apicore import errors


class Plan(BaseModel):
    name: str = Field(pattern=r"^[\w.-]+$")
    description: str
    paid: bool = False
    url: str | None = None
    fixed_fee: float = Field(1.0, ge=0, description="credits per request or job")
    per_cpu_second: float = Field(0.05, ge=0)
    per_gb_second: float = Field(0.01, ge=0)
    per_megapixel: float = Field(0.01, ge=0)

    def costs(self, usage: dict[str, Any]) -> float:
        return round(self.fixed_fee + usage_value(usage, "cpu") * self.per_cpu_second
                     + usage_value(usage, "memory") * self.per_gb_second
                     + usage_value(usage, "input") * self.per_megapixel, 3)

    def public(self) -> dict:
        """The capabilities' ``billing.plans`` entry."""
        entry = {"name": self.name, "description": self.description, "paid": self.paid}
        if self.url:
            entry["url"] = self.url
        return entry


DEFAULT_PLANS = [Plan(name="free", description="Free tier: credits granted to every new user, "
                                               "costs from CPU time, memory and input pixels.")]


def usage_value(usage: dict[str, Any], name: str) -> float:
    entry = usage.get(name) or {}
    return float(entry.get("value") or 0)


def usage_document(cpu_seconds: float, memory_gb_seconds: float, input_values: int, duration: float,
                   output_bytes: int) -> dict[str, dict]:
    """openEO ``usage`` (value/unit pairs)."""
    return {
        "cpu": {"value": round(cpu_seconds, 3), "unit": "cpu-seconds"},
        "memory": {"value": round(memory_gb_seconds, 3), "unit": "gb-seconds"},
        "input": {"value": round(input_values / 1e6, 3), "unit": "megapixel"},
        "duration": {"value": round(duration, 3), "unit": "seconds"},
        "storage": {"value": int(output_bytes), "unit": "bytes"},
    }


# Failure codes of batch jobs that are not openEO errors (jobs/failures.py, runner): the backend's ones.
BACKEND_FAILURE_CODES = frozenset({"Internal", "StorageFailure", "ClusterUnavailable", "RunnerLost"})


def caused_by_user(code: str, status: int | None = None) -> bool:
    """Whether a failure is the user's doing: by the HTTP status of the openEO error when known (4xx), else
    by its code (the spec's status for openEO codes; the runner's own codes such as TimeLimitExceeded,
    BudgetExceeded, WorkerMemoryExceeded are the user's unless listed in ``BACKEND_FAILURE_CODES``)."""
    if status is not None:
        return status < 500
    if code in BACKEND_FAILURE_CODES:
        return False
    known = errors.ALL_CODES.get(code)
    return known is None or known.status < 500


def failure_costs(plan: Plan, usage: dict[str, Any], user_caused: bool) -> float:
    """What a failed synchronous request or batch job costs — one rule for both: a failure caused by the
    user's input is charged its measured usage without the fixed fee, a failure of the backend nothing."""
    if not user_caused:
        return 0.0
    return round(max(0.0, plan.costs(usage) - plan.fixed_fee), 3)


def plan_for(plans: list[Plan], name: str | None) -> Plan:
    if name is None:
        return plans[0]
    for plan in plans:
        if plan.name.lower() == str(name).lower():
            return plan
    raise errors.BillingPlanInvalid(f"Plan '{name}' does not exist; the plans are "
                                    f"{', '.join(p.name for p in plans)} (see billing.plans in GET /).")


def check_budget(budget: Any, plan: Plan) -> float | None:
    """A request's or job's budget: null, or a number that covers at least the fixed fee."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget != budget or budget < 0:
        raise errors.BudgetInvalid(f"'budget' must be a non-negative number of credits or null, not {budget!r}.")
    if budget < plan.fixed_fee:
        raise errors.BudgetInvalid(f"The budget of {budget:g} credits is lower than the fixed fee of "
                                   f"{plan.fixed_fee:g} credits of plan '{plan.name}'; raise it or leave it out.")
    return float(budget)
