"""Synchronous processing and validation across the federation (apicore.services.ProcessingService).

``POST /result``: the federation balance is checked (402), the graph is routed (aggregator/routing.py:
healthy backends offering every collection and process, extents, weight, load = requests this process
is proxying to each backend, ``federation:force-backend``), the user's UDPs the graph calls are stored on
the chosen backend with the user's own credentials (``PUT /process_graphs/{id}``: the backend resolves
them as it resolves any UDP of that user; the aggregator's copy wins), and the request is proxied with
the user's credentials there and streamed back. The backend's ``OpenEO-Costs`` are charged once to the
federation ledger. The choice and its reason are in the response headers ``OpenEO-Federation-Backend``
and ``OpenEO-Federation-Reason``.

A graph whose collections live on different backends is split (aggregator/split/): its parts run as
batch jobs on their backends, the rest on the primary backend reads their results with load_stac.

``POST /validation``: routed the same way and validated by the chosen backend; ``federation:backends``
lists every backend able to run the graph. A graph no backend can run is a validation error saying what
is missing where.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import replace
from typing import Any

from aggregator.auth import FederatedCaller
from aggregator.federation.errors import BackendResponseInvalid
from aggregator.parts import AggregatorParts
from aggregator.routing import (FORCE_BACKEND, FederationBackendUnavailable, FederationNoBackend, RoutingDecision,
                                analyse, force_backend_of, route)
from aggregator.services.proxy import streamed_download
from aggregator.split.sync import split_result
from aggregator.split.validation import split_validation
from apicore import errors
from apicore.services import Download

log = logging.getLogger(__name__)

BACKEND_HEADER = "OpenEO-Federation-Backend"
REASON_HEADER = "OpenEO-Federation-Reason"
_UNSAFE_HEADER_TEXT = re.compile(r"[^\x20-\x7e]")


class FederationProcessing:
    def __init__(self, parts: AggregatorParts):
        self.parts = parts

    def result(self, caller: FederatedCaller, body: dict, root: str) -> Download:
        process = body.get("process")
        if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict):
            raise errors.ProcessGraphMissing("Send {\"process\": {\"process_graph\": {...}}}.")
        parts = self.parts
        parts.accounting.preflight(caller, body.get("plan"), body.get("budget"))
        try:
            decision, udps = self._route(caller, process["process_graph"], body)
        except FederationNoBackend as error:  # collections on different backends: run it split, if it can be
            if error.split_plan is None:
                raise
            download, reason = split_result(parts, caller, _forwarded(body), error.split_plan)
            download.headers.update(_decision_headers(RoutingDecision(error.split_plan.primary, reason)))
            return download
        decision, headers = _with_credentials(decision, caller)
        backend_id = decision.backend_id
        upstream = self._upstream(backend_id)
        self._store_udps(upstream, headers, udps)
        done = parts.in_flight.begin(backend_id)
        try:
            response = upstream.request("POST", "result", headers=headers, json=_forwarded(body),
                                        timeout=parts.settings.result_timeout, stream=True)
        except BaseException:
            done()
            raise
        download = streamed_download(upstream, response, "POST /result", done)
        try:
            reference = response.headers.get("OpenEO-Identifier") or f"aggregator-{uuid.uuid4().hex}"
            parts.accounting.charge_result(caller, backend_id, reference, response.headers.get("OpenEO-Costs"))
        except BaseException:
            download.close()
            raise
        download.headers.update(_decision_headers(decision))
        return download

    def validate(self, caller: FederatedCaller | None, body: dict, root: str) -> dict:
        graph = body.get("process_graph")
        if not isinstance(graph, dict) or not graph:
            return {"errors": [{"code": "ProcessGraphMissing",
                                "message": "The process has no process graph: send {\"process_graph\": {...}}."}],
                    "federation:backends": []}
        try:
            decision, udps = self._route(caller, graph, body)
        except errors.OpenEOError as error:  # no backend can run it, or the graph cannot be read: say why
            if isinstance(error, FederationNoBackend) and error.split_plan is not None:
                return split_validation(self.parts, caller, graph, error.split_plan)
            return {"errors": [{"code": error.code, "message": error.message}], "federation:backends": []}
        if caller is not None:
            decision, headers = _with_credentials(decision, caller, required=bool(udps))
        else:
            headers = {}
        upstream = self._upstream(decision.backend_id)
        self._store_udps(upstream, headers, udps)
        done = self.parts.in_flight.begin(decision.backend_id)
        try:
            document = upstream.request_json("POST", "validation", headers=headers, json=_forwarded(body))
        finally:
            done()
        if not isinstance(document.get("errors"), list):
            raise BackendResponseInvalid(decision.backend_id, "POST /validation: no 'errors' list")
        return {**document, "federation:backends": decision.candidates}

    # -- helpers --

    def _route(self, caller: FederatedCaller | None, graph: dict, body: dict) -> tuple[RoutingDecision, dict]:
        """The routing decision and the user's UDPs (id -> stored spec) the graph calls."""
        specs: dict[str, dict | None] = {}

        def resolve(process_id: str) -> Any:
            if process_id not in specs:
                specs[process_id] = self.parts.udps.get(caller.user_id, process_id) if caller else None
            spec = specs[process_id]
            return spec.get("process_graph") if spec else None

        needs = analyse(graph, resolve_udp=resolve)
        metadata = self.parts.metadata
        index, _ = metadata.collection_index()
        federation = self.parts.federation
        decision = route(needs, backends=federation.registry.snapshot(), collections=index,
                         processes=metadata.process_ids(), available=federation.monitor.available,
                         load=self.parts.in_flight.snapshot(), force_backend=force_backend_of(body))
        log.info("routed to %s: %s", decision.backend_id, decision.reason)
        return decision, {process_id: specs[process_id] for process_id in sorted(needs.udps)}

    def _upstream(self, backend_id: str):
        upstream = self.parts.federation.upstreams.get(backend_id)
        if upstream is None:  # removed between routing and now
            raise FederationBackendUnavailable(reason=f"Backend '{backend_id}' left the federation just now.")
        return upstream

    def _store_udps(self, upstream, headers: dict, udps: dict) -> None:
        for process_id, spec in udps.items():
            upstream.request("PUT", f"process_graphs/{process_id}", headers=headers, json=spec,
                             timeout=self.parts.settings.metadata_timeout)


def _with_credentials(decision: RoutingDecision, caller: FederatedCaller, required: bool = True
                      ) -> tuple[RoutingDecision, dict[str, str]]:
    """The best candidate the caller has credentials for, and the headers for it (a backend where their
    login failed is passed over, saying so); none: the first candidate's BackendCredentialsMissing, or,
    when not ``required``, the first candidate without credentials."""
    skipped = []
    for backend_id in decision.candidates or [decision.backend_id]:
        headers = caller.headers_for(backend_id)
        if headers is not None:
            if not skipped:
                return decision, headers
            note = f"; passed over (no credentials of yours there): {', '.join(skipped)}"
            return replace(decision, backend_id=backend_id, reason=decision.reason + note), headers
        skipped.append(backend_id)
    if not required:
        return decision, {}
    caller.upstream_headers(decision.backend_id)  # raises BackendCredentialsMissing, saying why
    raise AssertionError("unreachable")


def _forwarded(body: dict) -> dict:
    """The request body for the backend: without the aggregator's own ``federation:force-backend``."""
    forwarded = {key: value for key, value in body.items() if key != FORCE_BACKEND}
    options = forwarded.get("job_options")
    if isinstance(options, dict) and FORCE_BACKEND in options:
        forwarded["job_options"] = {k: v for k, v in options.items() if k != FORCE_BACKEND} or None
        if forwarded["job_options"] is None:
            del forwarded["job_options"]
    return forwarded


def _decision_headers(decision: RoutingDecision) -> dict[str, str]:
    reason = _UNSAFE_HEADER_TEXT.sub("?", decision.reason)[:1000]
    return {BACKEND_HEADER: decision.backend_id, REASON_HEADER: reason}
