"""Batch jobs across the federation (apicore.services.JobsService): each job lives on one backend.

``POST /jobs``: the graph is routed like ``POST /result`` (dispatch.py; a graph that reads a job with
``load_result`` goes to that job's backend), job ids and results URLs inside it become the chosen
backend's (aggregator/jobs/graphs.py; results of a job elsewhere through their signed ``canonical`` URL),
the user's UDPs it calls are stored there, and the job is created there with the user's credentials. The
user gets the federated id (aggregator/jobs/ids.py); the response headers ``OpenEO-Federation-Backend``
and ``OpenEO-Federation-Reason`` name the choice, which ``GET /jobs/{id}`` shows as ``federation:backends``
and ``federation:reason`` (kept in the aggregator's database: job_records.py).

Every other call goes to the job's backend with the user's credentials; its documents are rewritten
(aggregator/jobs/rewrite.py: federated ids, links into the aggregator, signed result URLs kept so
downloads go to the backend directly). Backend errors keep their status and code, the message names the
backend (federation/errors.py). ``federation:missing`` is ``[]`` on a job's documents: a one-backend job's
answer comes from its backend or is an error. ``GET /jobs`` merges every backend (job_listing.py).

Credits: ``POST /jobs/{id}/results`` checks the federation balance first (402); a run's costs, once a
job document shows them (aggregator/jobs/costs.py), are charged to the federation ledger once per run,
whichever request sees them first (describe, listing, start, delete; concurrent ones included;
job_charges.py).

A graph whose collections live on different backends becomes a split job (``s1-`` ids,
aggregator/split/jobs.py): every call on such an id goes there; the listing merges those the aggregator
holds with the backends' jobs and leaves out the backends' jobs they consist of.
"""

from __future__ import annotations

import logging
from typing import Mapping
from urllib.parse import quote

from aggregator.auth import FederatedCaller
from aggregator.federation.errors import BackendDeparted, BackendResponseInvalid
from aggregator.federation.upstream import Upstream
from aggregator.jobs import graphs, ids, rewrite
from aggregator.jobs.cursor import CursorCodec
from aggregator.jobs.ids import BackendJobRef, SplitJobRef
from aggregator.jobs.urls import JobUrls
from aggregator.merging.common import FEDERATION_MISSING
from aggregator.merging.links import link_list
from aggregator.parts import AggregatorParts
from aggregator.routing import FORCE_BACKEND, FederationNoBackend, force_backend_of
from aggregator.services.dispatch import Dispatch, decision_headers, forwarded, with_credentials
from aggregator.services.job_charges import JobCharges
from aggregator.services.job_listing import FederatedJobListing
from aggregator.split.jobs import SplitJobs
from aggregator.storage.job_records import JobRecords
from apicore import errors
from apicore.services import Page
from backend.storage.models import utcnow

log = logging.getLogger(__name__)

REASON = "federation:reason"


class FederationJobs:
    def __init__(self, parts: AggregatorParts, secret_key: str | None = None, listing_deadline: float | None = None):
        from backend.services import secret_key as configured_secret  # light: builds nothing of the engine

        self.parts = parts
        self.dispatch = Dispatch(parts)
        self.records = JobRecords(parts.db)
        self.charges = JobCharges(parts.accounting, self.records)
        codec = CursorCodec(secret_key or configured_secret(parts.settings))
        self.listing_pages = FederatedJobListing(parts, codec, listing_deadline or parts.settings.jobs_listing_deadline)
        self.split = SplitJobs(parts, self.dispatch)

    # -- the listing --

    def listing(self, caller: FederatedCaller, root: str, limit: int | None, page: str | None = None,
                offset: int = 0) -> Page:
        if offset and page is None:
            raise errors.BadRequest(reason="'offset' is not supported by the federation's job listing: page with "
                                           "'limit' and follow the 'next' link")
        seen_from = utcnow()
        split_jobs, parts_of_split_jobs = self.split.listing_entries(caller)
        merged = self.listing_pages.page(caller, root, limit, page, local_jobs=split_jobs)
        # The backends' jobs a split job consists of are shown through it: a page may come out shorter.
        merged.jobs = [job for job in merged.jobs if job["id"] not in parts_of_split_jobs]
        records = self.records.get(caller.user_id, [job["id"] for job in merged.jobs])
        for job in merged.jobs:
            ref = ids.decode(job["id"])
            if isinstance(ref, SplitJobRef):
                continue
            record = records.get(job["id"])
            self.charges.charge_due(caller, ref, job, record, seen_from)
            if record is not None and record.reason:
                job[REASON] = record.reason
        return Page({"jobs": merged.jobs, FEDERATION_MISSING: merged.missing}, merged.next)

    # -- one job --

    def create(self, caller: FederatedCaller, fields: dict, root: str) -> tuple[str, dict[str, str]]:
        process = fields["process"]
        graph = process["process_graph"]
        backends = self._backend_roots()
        references = graphs.references(graph, root, backends, resolve_split=_split_not_readable)
        try:
            decision, udps = self.dispatch.route(caller, graph, fields,
                                                 job_backend=lambda job_id: ids.owner_of(job_id, backends))
        except FederationNoBackend as error:
            if error.split_plan is None:
                raise
            primary = error.split_plan.primary
            translated = self._graph_for(caller, graph, references, primary, root, backends)
            return self.split.create(caller, fields, translated, error.split_plan)
        decision, headers = with_credentials(decision, caller)
        backend_id = decision.backend_id
        upstream = self.dispatch.upstream(backend_id)
        translated = self._graph_for(caller, graph, references, backend_id, root, backends)
        self.dispatch.store_udps(upstream, headers, udps)
        body = {key: value for key, value in forwarded({**fields, "process": {**process, "process_graph": translated}})
                .items() if not key.startswith("federation:")}  # the aggregator's own fields stay here
        response = upstream.request("POST", "jobs", headers=headers, json=body, timeout=self._timeout)
        job_id = response.headers.get("OpenEO-Identifier") or response.headers.get("Location", "").rstrip("/")
        job_id = job_id.rsplit("/", 1)[-1]
        if not job_id:
            raise BackendResponseInvalid(backend_id, "POST /jobs: neither OpenEO-Identifier nor Location")
        federated_id = ids.encode(backend_id, job_id)
        self.records.add(caller.user_id, federated_id, backend_id, decision.reason)
        log.info("job %s created on %s: %s", federated_id, backend_id, decision.reason)
        return federated_id, decision_headers(decision)

    def describe(self, caller: FederatedCaller, job_id: str, root: str) -> dict:
        if _is_split(job_id):
            return self.split.describe(caller, job_id, root)
        ref, upstream, headers = self._target(caller, job_id)
        seen_from = utcnow()
        record = self.records.get(caller.user_id, [job_id]).get(job_id)
        document = upstream.request_json("GET", _path(ref), headers=headers, timeout=self._timeout)
        if not (isinstance(document.get("id"), str) and isinstance(document.get("status"), str)):
            raise BackendResponseInvalid(ref.backend_id, "GET /jobs/{id}: not a job (no 'id' and 'status')")
        self.charges.charge_due(caller, ref, document, record, seen_from)
        shown = rewrite.job_document(document, self._urls(ref, upstream, root))
        shown[FEDERATION_MISSING] = []
        if record is not None and record.reason:
            shown[REASON] = record.reason
        return shown

    def update(self, caller: FederatedCaller, job_id: str, changes: dict, root: str) -> None:
        if _is_split(job_id):
            return self.split.update(caller, job_id, changes, lambda graph: self._split_plan(caller, graph, root))
        ref, upstream, headers = self._target(caller, job_id)
        forced = force_backend_of(changes)
        if forced is not None and forced != ref.backend_id:
            raise FederationNoBackend(reason=f"{FORCE_BACKEND} names '{forced}', but this job is on backend "
                                             f"'{ref.backend_id}' and cannot move: create a new job instead.")
        if "process" in changes:
            process = changes["process"]
            graph = process["process_graph"]
            backends = self._backend_roots()
            references = graphs.references(graph, root, backends, resolve_split=_split_not_readable)
            _, udps = self.dispatch.route(caller, graph, changes, force_backend=ref.backend_id)
            translated = self._graph_for(caller, graph, references, ref.backend_id, root, backends)
            self.dispatch.store_udps(upstream, headers, udps)
            changes = {**changes, "process": {**process, "process_graph": translated}}
        body = {key: value for key, value in forwarded(changes).items() if not key.startswith("federation:")}
        upstream.request("PATCH", _path(ref), headers=headers, json=body, timeout=self._timeout)

    def delete(self, caller: FederatedCaller, job_id: str) -> None:
        if _is_split(job_id):
            return self.split.delete(caller, job_id)
        ref, upstream, headers = self._target(caller, job_id)
        self._charge_current(caller, ref, upstream, headers)  # a finished run nobody looked at yet
        upstream.request("DELETE", _path(ref), headers=headers, timeout=self._timeout)

    def start(self, caller: FederatedCaller, job_id: str, root: str) -> None:
        if _is_split(job_id):
            return self.split.start(caller, job_id)
        ref, upstream, headers = self._target(caller, job_id)
        document = self._charge_current(caller, ref, upstream, headers)  # the previous run, before it is reset
        self.parts.accounting.preflight(caller, self._known_plan(document.get("plan")))
        upstream.request("POST", _path(ref, "results"), headers=headers, timeout=self._timeout)
        self.records.next_run(caller.user_id, ref.federated_id, ref.backend_id)

    def stop(self, caller: FederatedCaller, job_id: str) -> None:
        if _is_split(job_id):
            return self.split.stop(caller, job_id)
        ref, upstream, headers = self._target(caller, job_id)
        upstream.request("DELETE", _path(ref, "results"), headers=headers, timeout=self._timeout)

    def logs(self, caller: FederatedCaller, job_id: str, root: str, offset: str | None, level: str,
             limit: int | None) -> Page:
        if _is_split(job_id):
            return self.split.logs(caller, job_id, root, offset, level, limit)
        ref, upstream, headers = self._target(caller, job_id)
        params = {name: value for name, value in (("offset", offset), ("level", level), ("limit", limit))
                  if value is not None}
        document = upstream.request_json("GET", _path(ref, "logs"), headers=headers, params=params,
                                         timeout=self._timeout)
        if not isinstance(document.get("logs"), list):
            raise BackendResponseInvalid(ref.backend_id, "GET /jobs/{id}/logs: no 'logs' list")
        shown = rewrite.logs_document(document, self._urls(ref, upstream, root))
        shown.pop("links", None)  # the view links the next page itself, with the offset below
        shown[FEDERATION_MISSING] = []
        return Page(shown, rewrite.logs_next_offset(document))

    def estimate(self, caller: FederatedCaller, job_id: str, root: str) -> dict:
        if _is_split(job_id):
            return self.split.estimate(caller, job_id)
        ref, upstream, headers = self._target(caller, job_id)
        document = upstream.request_json("GET", _path(ref, "estimate"), headers=headers, timeout=self._timeout)
        return rewrite.estimate_document(document, self._urls(ref, upstream, root))

    def results(self, caller: FederatedCaller, job_id: str, root: str, partial: bool) -> tuple[dict, int]:
        if _is_split(job_id):
            return self.split.results(caller, job_id, root, partial)
        ref, upstream, headers = self._target(caller, job_id)
        document, status = upstream.request_json_status(
            "GET", _path(ref, "results"), headers=headers, params={"partial": "true"} if partial else None,
            timeout=self._timeout, ok_statuses=(424,))  # 424: a failed job's error log entry, passed on as it is
        if status != 424 and not isinstance(document.get("assets"), dict):
            raise BackendResponseInvalid(ref.backend_id, "GET /jobs/{id}/results: no 'assets' object")
        shown = rewrite.results_document(document, self._urls(ref, upstream, root), job_id=ref.job_id)
        shown[FEDERATION_MISSING] = []
        return shown, status

    # -- helpers --

    @property
    def _timeout(self) -> float:
        return self.parts.settings.jobs_timeout

    def _backend_roots(self) -> dict[str, str]:
        return {config.id: config.url for config in self.parts.federation.registry.snapshot()}

    def _target(self, caller: FederatedCaller, job_id: str) -> tuple[BackendJobRef, Upstream, dict[str, str]]:
        """The job's backend, its Upstream and the caller's headers for it.

        An id that is no federated id, or whose backend prefix names no backend of this federation, is
        404 JobNotFound saying which (ids.locate). A job of a registered backend that was removed is 410
        BackendDeparted naming the backend and when it left: gone for good (a 503 would invite retries that
        can never succeed)."""
        ref = ids.decode(job_id)
        if isinstance(ref, BackendJobRef):
            departure = self.parts.federation.registry.departed(ref.backend_id)
            if departure is not None:
                raise BackendDeparted(departure, f"Job '{job_id}'")
        ref = ids.locate(job_id, self._backend_roots())
        assert isinstance(ref, BackendJobRef)  # split jobs: self.split
        upstream = self.dispatch.upstream(ref.backend_id)
        return ref, upstream, caller.upstream_headers(ref.backend_id)

    def _split_plan(self, caller: FederatedCaller, graph: dict, root: str):
        """A new process for a split job: the graph translated for its primary backend and its split plan;
        a graph one backend can run is refused (the job would change kind: create a new job)."""
        backends = self._backend_roots()
        references = graphs.references(graph, root, backends, resolve_split=_split_not_readable)
        try:
            decision, _ = self.dispatch.route(caller, graph, {})
        except FederationNoBackend as error:
            if error.split_plan is None:
                raise
            primary = error.split_plan.primary
            return self._graph_for(caller, graph, references, primary, root, backends), error.split_plan
        raise FederationNoBackend(reason=(
            f"this graph runs on backend '{decision.backend_id}' alone, while the job is a split job: create a new "
            "job for it."))

    def _urls(self, ref: BackendJobRef, upstream: Upstream, root: str) -> JobUrls:
        return JobUrls.of(root, ref.backend_id, upstream.config.url)

    def _graph_for(self, caller: FederatedCaller, graph: dict, references: list, backend_id: str, root: str,
                   backends: Mapping[str, str]) -> dict:
        """The graph with federated job ids and results URLs replaced by ``backend_id``'s (results of jobs
        on other backends: their signed canonical URL, fetched from the job's backend)."""
        signed = {job: self._signed_results_url(caller, job) for job in graphs.signed_urls_needed(references, backend_id)}
        return graphs.for_backend(graph, backend_id, root=root, backend_roots=backends, signed_results=signed)

    def _signed_results_url(self, caller: FederatedCaller, job: BackendJobRef) -> str:
        upstream = self.dispatch.upstream(job.backend_id)
        document = upstream.request_json("GET", _path(job, "results"), headers=caller.upstream_headers(job.backend_id),
                                         timeout=self._timeout)
        for link in link_list(document.get("links")):
            if isinstance(link, dict) and link.get("rel") == "canonical" and isinstance(link.get("href"), str):
                return link["href"]
        raise FederationNoBackend(reason=(
            f"the results of job '{job.federated_id}' on backend '{job.backend_id}' have no signed 'canonical' "
            "link, so another backend cannot read them: run this graph on that backend "
            f"({FORCE_BACKEND}: '{job.backend_id}')."))

    def _known_plan(self, plan: object) -> str | None:
        """The job's plan when the federation knows it (its fixed fee is then checked), else the default."""
        if isinstance(plan, str) and any(p.name == plan for p in self.parts.accounting.plans):
            return plan
        return None

    def _charge_current(self, caller: FederatedCaller, ref: BackendJobRef, upstream: Upstream,
                        headers: dict[str, str]) -> dict:
        seen_from = utcnow()
        record = self.records.get(caller.user_id, [ref.federated_id]).get(ref.federated_id)
        document = upstream.request_json("GET", _path(ref), headers=headers, timeout=self._timeout)
        if not (isinstance(document.get("id"), str) and isinstance(document.get("status"), str)):
            raise BackendResponseInvalid(ref.backend_id, "GET /jobs/{id}: not a job (no 'id' and 'status')")
        self.charges.charge_due(caller, ref, document, record, seen_from)
        return document


def _path(ref: BackendJobRef, rest: str = "") -> str:
    return f"jobs/{quote(ref.job_id, safe='')}" + (f"/{rest}" if rest else "")


def _is_split(job_id: str) -> bool:
    return isinstance(job_id, str) and job_id.startswith(ids.SPLIT_PREFIX + "-")


def _split_not_readable(ref: SplitJobRef) -> BackendJobRef:
    raise errors.JobNotFound(
        f"The graph reads split job '{ref.federated_id}' by id, which only its primary backend's job can be read "
        f"as: use load_stac with the split job's results URL (GET /jobs/{ref.federated_id}/results, "
        "link 'canonical') instead.", identifier=ref.federated_id)
