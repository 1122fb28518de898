"""Split batch jobs (``s1-`` ids): a job whose collections live on different backends.

``POST /jobs`` of such a graph records the job in the aggregator (split_records.py) and nothing runs.
``POST /jobs/{id}/results`` starts each part (load_collection + save_result, graphs.py) as a batch job on
its backend (parts.py). The job advances whenever it is looked at (``GET /jobs/{id}``, its results or
logs): the parts are polled; once all have finished, the primary job — the user's graph reading the
parts' signed results with load_stac, with the user's title, plan and budget — is created and started on
the primary backend; from then on the job shows the primary job's status. A part that fails ends the job
in ``error`` naming the part, its backend and the backend's error. Stop and delete go to every part and
the primary job. Results are the primary job's, under the split job's id. Costs: each backend job's
final costs are charged once (refs ``<id>#<run>:<node>`` and ``<id>#<run>:primary``).

Concurrency: every state change is a compare-and-set on the record; a request that loses the race
undoes what it started (deletes the jobs it created) and shows the winner's state.
"""

from __future__ import annotations

import logging
import uuid

from aggregator.auth import FederatedCaller
from aggregator.federation.errors import BackendResponseInvalid, UpstreamError
from aggregator.jobs import ids, rewrite
from aggregator.jobs.costs import due_costs, run_ref
from aggregator.jobs.urls import JobUrls
from aggregator.merging.common import FEDERATION_MISSING
from aggregator.routing import RoutingDecision, SplitPlan
from aggregator.services.dispatch import Dispatch, decision_headers
from aggregator.split import job_state
from aggregator.split.graphs import PartGraph, SplitGraphs, split_graphs
from aggregator.split.job_state import ACTIVE, REASON, initial_state, now, part_entry
from aggregator.split.errors import SplitPartFailed
from aggregator.split.parts import DONE, PartJob, PartRunner
from aggregator.storage.split_records import SplitRecord, SplitRecords
from apicore import errors
from apicore.services import Page

log = logging.getLogger(__name__)

JOB_FIELDS = ("title", "description", "plan", "budget", "log_level", "job_options")


class SplitJobs:
    def __init__(self, parts, dispatch: Dispatch):
        self.parts = parts
        self.dispatch = dispatch
        self.records = SplitRecords(parts.db)

    @property
    def runner(self) -> PartRunner:
        return PartRunner(self.parts.federation.upstreams, jobs_timeout=self.parts.settings.jobs_timeout)

    # -- the job --

    def create(self, caller: FederatedCaller, fields: dict, graph: dict, plan: SplitPlan) -> tuple[str, dict]:
        """``graph``: the user's graph with job references already translated for the primary backend."""
        split = split_graphs(graph, plan)
        for backend_id in split.backends:  # no credentials there: refused now, not when it starts
            caller.upstream_headers(backend_id)
        record_id = uuid.uuid4().hex
        kept = {key: fields[key] for key in JOB_FIELDS if fields.get(key) is not None}
        kept["process"] = fields["process"]
        kept[REASON] = split.describe()
        self.records.add(caller.user_id, record_id, kept, split.to_json(), initial_state())
        federated_id = ids.split_job_id(record_id)
        log.info("split job %s created: %s", federated_id, kept[REASON])
        return federated_id, decision_headers(RoutingDecision(split.primary, kept[REASON]))

    def describe(self, caller: FederatedCaller, job_id: str, root: str) -> dict:
        record = self._advance(caller, self._record(caller, job_id))
        return self._document(record, root)

    def update(self, caller: FederatedCaller, job_id: str, changes: dict, plan_for) -> None:
        """Title, description, plan, budget...; a new process is split anew (``plan_for(graph)``)."""
        record = self._record(caller, job_id)
        if record.state["status"] in ACTIVE:
            raise errors.JobLocked()
        fields = {**record.fields, **{k: v for k, v in changes.items() if k in JOB_FIELDS}}
        split = None
        if "process" in changes:
            graph, plan = plan_for(changes["process"]["process_graph"])
            split = split_graphs(graph, plan)
            fields["process"] = changes["process"]
            fields[REASON] = split.describe()
        if not self.records.save(record, fields=fields, split=split.to_json() if split else None):
            raise errors.JobLocked("The job changed while it was being updated: read it and try again.")

    def start(self, caller: FederatedCaller, job_id: str) -> None:
        record = self._record(caller, job_id)
        if record.state["status"] in ACTIVE:
            return  # already on its way: a second start changes nothing
        self.parts.accounting.preflight(caller, self._known_plan(record.fields.get("plan")), record.fields.get("budget"))
        split, runner = SplitGraphs.from_json(record.split), self.runner
        self._charge_due(caller, record)
        self._delete_backend_jobs(caller, record)  # the previous run's
        title = record.fields.get("title") or "split job"
        started: list[PartJob] = []
        try:
            for part in split.parts:
                started.append(runner.submit(part, caller.upstream_headers(part.backend_id),
                                             f"{title} [part {part.node} of {ids.split_job_id(record.record_id)}]"))
        except BaseException:
            runner.delete_all(started, caller.upstream_headers)
            raise
        state = {**initial_state(), "status": "queued", "run": record.state["run"] + 1,
                 "parts": {job.part.node: part_entry(job) for job in started}}
        if not self.records.save(record, state=state):  # a concurrent start won: its parts run, not ours
            runner.delete_all(started, caller.upstream_headers)

    def stop(self, caller: FederatedCaller, job_id: str) -> None:
        record = self._advance(caller, self._record(caller, job_id))
        if record.state["status"] not in ACTIVE:
            return
        for job, headers in self._backend_jobs(caller, record):
            self.runner.stop(job, headers)
        state = {**record.state, "status": "canceled", "error": None, "updated": now()}
        self.records.save(record, state=state)  # lost: the job ended meanwhile, which is as good

    def delete(self, caller: FederatedCaller, job_id: str) -> None:
        record = self._advance(caller, self._record(caller, job_id))
        self._charge_due(caller, record)
        self._delete_backend_jobs(caller, record)
        self.records.delete(record)

    def results(self, caller: FederatedCaller, job_id: str, root: str, partial: bool) -> tuple[dict, int]:
        record = self._advance(caller, self._record(caller, job_id))
        status = record.state["status"]
        if status == "error":
            entry = {"id": "split-error", "code": "FederationSplitJobFailed", "level": "error",
                     "message": record.state.get("error") or "The split job failed."}
            return entry, 424
        primary = record.state.get("primary")
        if status != "finished" or not primary:
            raise errors.JobNotFinished()
        split = SplitGraphs.from_json(record.split)
        upstream = self.dispatch.upstream(split.primary)
        document, code = upstream.request_json_status(
            "GET", f"jobs/{primary['job_id']}/results", headers=caller.upstream_headers(split.primary),
            timeout=self.parts.settings.jobs_timeout, ok_statuses=(424,))
        shown = rewrite.results_document(document, JobUrls.of(root, split.primary, upstream.config.url))
        if shown.get("id") == primary["job_id"]:
            shown["id"] = job_id
        shown[FEDERATION_MISSING] = []
        return shown, code

    def estimate(self, caller: FederatedCaller, job_id: str) -> dict:
        """Not offered; an id that names no split job of the caller is 404 like on every other route (a 501
        before the look-up answered another user's or a made-up ``s1-`` id alike, but not as missing)."""
        self._record(caller, job_id)
        raise errors.FeatureUnsupported(
            "Estimates of split jobs (collections on different backends) are not offered: each part runs on "
            "its own backend. Estimate the parts as jobs of their own backends, or start the job.")

    def logs(self, caller: FederatedCaller, job_id: str, root: str, offset: str | None, level: str,
             limit: int | None) -> Page:
        """The parts' progress as entries of the aggregator, then the primary job's own logs (paged by it)."""
        record = self._advance(caller, self._record(caller, job_id))
        split = SplitGraphs.from_json(record.split)
        entries: list[dict] = []
        if offset is None:
            for index, detail in enumerate(job_state.split_details(split, record.state)["parts"]):
                failed = detail["status"] in ("error", "canceled")
                entries.append({"id": f"split-part-{index}", "level": "error" if failed else "info",
                                "message": f"part {detail['node']} (load_collection of {detail['collection']}) on "
                                           f"backend {detail['backend']}: job {detail['job']} {detail['status']}"})
            if record.state.get("error"):
                entries.append({"id": "split-error", "level": "error", "message": record.state["error"]})
        primary = record.state.get("primary")
        next_offset = None
        if primary and primary.get("job_id"):
            upstream = self.dispatch.upstream(split.primary)
            params = {name: value for name, value in (("offset", offset), ("level", level), ("limit", limit))
                      if value is not None}
            document = upstream.request_json("GET", f"jobs/{primary['job_id']}/logs", params=params,
                                             headers=caller.upstream_headers(split.primary),
                                             timeout=self.parts.settings.jobs_timeout)
            if not isinstance(document.get("logs"), list):
                raise BackendResponseInvalid(split.primary, "GET /jobs/{id}/logs: no 'logs' list")
            urls = JobUrls.of(root, split.primary, upstream.config.url)
            entries += rewrite.logs_document(document, urls)["logs"]
            next_offset = rewrite.logs_next_offset(document)
        return Page({"logs": entries, FEDERATION_MISSING: []}, next_offset)

    # -- the listing --

    def listing_entries(self, caller: FederatedCaller) -> tuple[list[dict], set[str]]:
        """The user's split jobs as listing entries (their last recorded state) and the ids of the backends'
        jobs they consist of (not listed on their own)."""
        entries, hidden = [], set()
        for record in self.records.of_user(caller.user_id):
            split = SplitGraphs.from_json(record.split)
            entries.append(job_state.document(ids.split_job_id(record.record_id), record.fields, split,
                                              record.state, record.created, record.fields.get(REASON, "")))
            hidden |= job_state.backend_job_ids(split, record.state)
        return entries, hidden

    # -- advancing a run --

    def _advance(self, caller: FederatedCaller, record: SplitRecord) -> SplitRecord:
        """Poll what runs, start the primary job once every part has finished, record it (compare-and-set;
        a lost race: the winner's record)."""
        if record.state["status"] not in ACTIVE:
            return record
        split, runner = SplitGraphs.from_json(record.split), self.runner
        state = {**record.state, "parts": {k: dict(v) for k, v in record.state["parts"].items()}, "updated": now()}
        created_primary = None
        try:
            if state["primary"] is None:
                created_primary = self._advance_parts(caller, record, split, state)
            else:
                primary = PartJob(_primary_part(split), job_id=state["primary"]["job_id"])
                runner.poll(primary, caller.upstream_headers(split.primary))
                state["primary"] = {"job_id": primary.job_id, "status": primary.status,
                                    "progress": primary.progress, "costs": primary.costs}
                if primary.status in DONE:
                    self._charge(caller, record, primary, state["run"])
                    state["status"] = primary.status
                    if primary.status == "error":
                        state["error"] = f"the primary job {ids.encode(split.primary, primary.job_id)} on backend " \
                                         f"'{split.primary}' failed: read its logs"
        except UpstreamError as error:  # a backend not answering now: shown as it was, asked again next time
            log.warning("split job %s: could not advance: %s", record.record_id, error.message)
            return record
        if self.records.save(record, state=state):
            return self.records.get(record.user_id, record.record_id) or record
        if created_primary is not None:  # another request advanced it first: its primary job counts
            runner.delete_all([created_primary], caller.upstream_headers)
        return self.records.get(record.user_id, record.record_id) or record

    def _advance_parts(self, caller: FederatedCaller, record: SplitRecord, split: SplitGraphs,
                       state: dict) -> PartJob | None:
        runner, jobs = self.runner, []
        for part in split.parts:
            entry = state["parts"][part.node]
            job = PartJob(part, job_id=entry["job_id"], status=entry["status"], canonical=entry.get("canonical"))
            headers = caller.upstream_headers(part.backend_id)
            if job.status not in DONE:
                runner.poll(job, headers)
                if job.status in DONE:
                    self._charge(caller, record, job, state["run"])
                if job.status == "finished":
                    try:
                        runner.finish(job, headers)
                    except SplitPartFailed as error:  # finished without a signed URL: unusable
                        job.status, state["error"] = "error", error.message
                state["parts"][part.node] = part_entry(job)
            jobs.append((job, headers))
        failed = next((job for job, _ in jobs if job.status in DONE and job.status != "finished"), None)
        if failed is not None:
            state["status"] = "error"
            state["error"] = state["error"] or runner.failure(failed, caller.upstream_headers(failed.backend_id)).message
            for job, headers in jobs:
                runner.stop(job, headers)
            return None
        if not all(job.status == "finished" for job, _ in jobs):
            state["status"] = job_state.overall(state)[0]
            return None
        return self._start_primary(caller, record, split, state, jobs)

    def _start_primary(self, caller, record: SplitRecord, split: SplitGraphs, state: dict, jobs) -> PartJob | None:
        graph = split.primary_graph({job.part.node: job.canonical for job, _ in jobs})
        headers = caller.upstream_headers(split.primary)
        self.dispatch.store_udps(self.dispatch.upstream(split.primary), headers, self.dispatch.needs(caller, graph)[1])
        fields = record.fields
        body = {key: fields[key] for key in JOB_FIELDS if key in fields}
        body["process"] = {**fields["process"], "process_graph": graph}
        try:
            primary = self.runner.submit(_primary_part(split), headers, fields.get("title") or "split job", body=body)
        except SplitPartFailed as error:
            state["status"] = "error"
            state["error"] = f"the primary graph was refused by backend '{split.primary}': {error.fields['reason']}"
            return None
        state["primary"] = {"job_id": primary.job_id, "status": primary.status, "progress": None, "costs": None}
        state["status"] = "running"
        return primary

    # -- helpers --

    def _record(self, caller: FederatedCaller, job_id: str) -> SplitRecord:
        ref = ids.decode(job_id)
        record = self.records.get(caller.user_id, getattr(ref, "record_id", ""))
        if record is None:
            raise errors.JobNotFound(identifier=job_id)
        return record

    def _document(self, record: SplitRecord, root: str) -> dict:
        split = SplitGraphs.from_json(record.split)
        urls = JobUrls.of(root, split.primary, root)  # only the job's own links: on the aggregator
        return job_state.document(ids.split_job_id(record.record_id), record.fields, split, record.state,
                                  record.created, record.fields.get(REASON, ""), urls)

    def _backend_jobs(self, caller: FederatedCaller, record: SplitRecord):
        """Every backend job of the current run with the user's headers for it (backends without them skipped)."""
        split = SplitGraphs.from_json(record.split)
        found = [(PartJob(part, job_id=(record.state["parts"].get(part.node) or {}).get("job_id")), part.backend_id)
                 for part in split.parts]
        primary = record.state.get("primary")
        if primary:
            found.append((PartJob(_primary_part(split), job_id=primary.get("job_id")), split.primary))
        for job, backend_id in found:
            headers = caller.headers_for(backend_id)
            if job.job_id and headers is not None:
                yield job, headers

    def _delete_backend_jobs(self, caller: FederatedCaller, record: SplitRecord) -> None:
        runner = self.runner
        for job, headers in self._backend_jobs(caller, record):
            runner.stop(job, headers)
            runner.delete(job, headers)

    def _charge_due(self, caller: FederatedCaller, record: SplitRecord) -> None:
        """Charge what the current run's backend jobs report, before they are deleted or restarted."""
        for job, headers in self._backend_jobs(caller, record):
            try:
                self.runner.poll(job, headers)
            except (UpstreamError, errors.OpenEOError):
                continue
            self._charge(caller, record, job, record.state["run"])

    def _charge(self, caller, record: SplitRecord, job: PartJob, run: int) -> None:
        """A backend job's final costs, once per run and job (the ledger keeps one charge per ref)."""
        costs = due_costs(job.document)
        if costs is not None:
            what = f"part:{job.part.node}" if job.part.node else "primary"
            ref = f"{run_ref(ids.split_job_id(record.record_id), run)}:{what}"
            self.parts.accounting.charge_job(caller, job.backend_id, ref[:255], costs)

    def _known_plan(self, plan: object) -> str | None:
        if isinstance(plan, str) and any(p.name == plan for p in self.parts.accounting.plans):
            return plan
        return None


def _primary_part(split: SplitGraphs) -> PartGraph:
    """The primary job in PartRunner's terms (node "": not a part)."""
    return PartGraph("", "the primary graph", split.primary, {})
