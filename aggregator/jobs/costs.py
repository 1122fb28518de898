"""Which costs of a backend's job document the federation charges, and under which ref.

A backend reports a run's costs on the job once the run has ended: ``finished`` or ``error`` (the user's
input failed), ``canceled``, or ``created`` again after the user stopped it while it ran (our backend
charges what a stopped run used). While a job is ``queued`` or ``running`` its ``costs`` may be a
running figure (or, on some backends, the previous run's), so nothing is charged then. A start resets
them: each run is charged under its own ref, ``<federated id>#<run>``, where ``run`` counts the starts
made through the aggregator (aggregator/storage/job_records.py).
"""

from __future__ import annotations

from typing import Mapping

from aggregator.accounting import parse_costs

ENDED = frozenset({"finished", "error", "canceled", "created"})


def due_costs(document: Mapping) -> float | None:
    """The costs to charge for the job's current run, or None when there is nothing (yet) to charge."""
    if document.get("status") not in ENDED:
        return None
    costs = parse_costs(document.get("costs"))
    return costs if costs else None


def run_ref(federated_id: str, run: int) -> str:
    """The charge ref of one run of a job (the ledger keeps one charge per ref)."""
    return f"{federated_id}#{run}"
