"""``POST /result`` of a graph whose collections live on different backends (routing's ``SplitPlan``).

The parts run as batch jobs on their backends (parts.py), all within the aggregator's ``result_timeout``
counted from the request; then the primary graph, reading the parts' signed results with load_stac, is
sent to the primary backend's ``POST /result`` and its answer streamed back, like any proxied result.
Costs: each part job's ``costs`` (``charge_job``, once per part job) and the primary's ``OpenEO-Costs``
(``charge_result``) go to the federation ledger. The part jobs are deleted once the answer has been sent
(or abandoned), or at once when anything fails: their results are intermediate, and the signed URLs
would otherwise keep them readable for the backend's ``result_url_ttl``.
"""

from __future__ import annotations

import logging
import time
import uuid

from aggregator.auth import FederatedCaller
from aggregator.routing import SplitPlan
from aggregator.services.dispatch import Dispatch
from aggregator.split.graphs import SplitGraphs, split_graphs
from aggregator.split.parts import PartJob, PartRunner
from apicore.services import Download

log = logging.getLogger(__name__)


def split_result(parts, caller: FederatedCaller, body: dict, plan: SplitPlan) -> tuple[Download, str]:
    """The primary backend's answer to the split graph of ``body`` (already without the aggregator's own
    fields) and the routing reason naming the parts."""
    settings = parts.settings
    deadline = time.monotonic() + settings.result_timeout
    graph = body["process"]["process_graph"]
    split = split_graphs(graph, plan)
    headers = caller.upstream_headers(split.primary)  # before any job starts: no credentials, nothing runs
    for part in split.parts:
        caller.upstream_headers(part.backend_id)
    runner = PartRunner(parts.federation.upstreams, jobs_timeout=settings.jobs_timeout)
    request_id = uuid.uuid4().hex
    jobs = runner.run_all(split.parts, caller.upstream_headers, deadline, title=f"federation split {request_id}",
                          on_progress=_log_progress)
    try:
        for job in jobs:
            parts.accounting.charge_job(caller, job.backend_id, f"split:{job.job_id}", job.costs)
        download = _primary(parts, caller, split, body, headers, jobs, deadline, request_id)
    except BaseException:
        runner.delete_all(jobs, caller.upstream_headers)
        raise
    close = download.cleanup

    def cleanup() -> None:
        try:
            if close is not None:
                close()
        finally:
            runner.delete_all(jobs, caller.upstream_headers)

    download.cleanup = cleanup
    jobs_text = ", ".join(f"{job.part.node} as job {job.job_id} on {job.backend_id}" for job in jobs)
    return download, f"{split.describe()} (parts run: {jobs_text})"


def _primary(parts, caller: FederatedCaller, split: SplitGraphs, body: dict, headers: dict, jobs: list[PartJob],
             deadline: float, request_id: str) -> Download:
    dispatch = Dispatch(parts)
    primary_graph = split.primary_graph({job.part.node: job.canonical for job in jobs})
    dispatch.store_udps(dispatch.upstream(split.primary), headers, dispatch.needs(caller, primary_graph)[1])
    forwarded = {**body, "process": {**body["process"], "process_graph": primary_graph}}
    return dispatch.proxy_result(caller, split.primary, headers, forwarded,
                                 timeout=max(1.0, deadline - time.monotonic()),
                                 reference=f"aggregator-split-{request_id}")


def _log_progress(job: PartJob) -> None:
    log.info("split part %s: job %s on %s is %s (%s %%)", job.part.node, job.job_id, job.backend_id, job.status,
             "?" if job.progress is None else f"{job.progress:g}")


