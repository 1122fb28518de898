"""The split job's document (GET /jobs/{id} and its GET /jobs entry) against the openEO spec's batch_job."""

from __future__ import annotations

from datetime import datetime, timezone

from aggregator.split.graphs import SplitGraphs
from aggregator.split.job_state import document, initial_state


def test_a_split_job_sent_with_plan_null_shows_no_plan_and_one_with_a_plan_names_it():
    # the backend's job documents said "plan": null (found by schema fuzzing, tests/reliability/test_fuzzing.py);
    # the aggregator's split jobs showed a plan sent as null the same way
    split = SplitGraphs(primary="A", parts=(), _graph={})
    created = datetime(2026, 12, 6, tzinfo=timezone.utc)
    without = document("agg-1", {"title": "t", "plan": None, "budget": None}, split, initial_state(), created, "why")
    assert "plan" not in without and (without["title"], without["budget"]) == ("t", None)
    chosen = document("agg-1", {"plan": "gold"}, split, initial_state(), created, "why")
    assert chosen["plan"] == "gold"
