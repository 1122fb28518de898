"""Synchronous processing and validation across the federation (apicore.services.ProcessingService).

``POST /result``: the federation balance is checked (402), the graph is routed (aggregator/routing.py:
healthy backends offering every collection and process, extents, weight, load = requests this process
is proxying to each backend, ``federation:force-backend``), the user's UDPs the graph calls are stored on
the chosen backend with the user's own credentials (``PUT /process_graphs/{id}``: the backend resolves
them as it resolves any UDP of that user; the aggregator's copy wins), and the request is proxied with
the user's credentials there and streamed back. The backend's ``OpenEO-Costs`` are charged once to the
federation ledger. The choice and its reason are in the response headers ``OpenEO-Federation-Backend``
and ``OpenEO-Federation-Reason``. Routing, credentials, UDPs and headers: dispatch.py (shared with jobs).

A graph whose collections live on different backends is split (aggregator/split/): its parts run as
batch jobs on their backends, the rest on the primary backend reads their results with load_stac.

``POST /validation``: routed the same way and validated by the chosen backend; ``federation:backends``
lists every backend able to run the graph. A graph no backend can run is a validation error saying what
is missing where.
"""

from __future__ import annotations

import logging
import uuid

from aggregator.auth import FederatedCaller
from aggregator.federation.errors import BackendResponseInvalid
from aggregator.parts import AggregatorParts
from aggregator.routing import FederationNoBackend, RoutingDecision
from aggregator.services.dispatch import (BACKEND_HEADER, REASON_HEADER, Dispatch, decision_headers, forwarded,
                                          with_credentials)
from aggregator.split.sync import split_result
from aggregator.split.validation import split_validation
from apicore import errors
from apicore.services import Download

log = logging.getLogger(__name__)

__all__ = ["BACKEND_HEADER", "REASON_HEADER", "FederationProcessing"]


class FederationProcessing:
    def __init__(self, parts: AggregatorParts):
        self.parts = parts
        self.dispatch = Dispatch(parts)

    def result(self, caller: FederatedCaller, body: dict, root: str) -> Download:
        process = body.get("process")
        if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict):
            raise errors.ProcessGraphMissing("Send {\"process\": {\"process_graph\": {...}}}.")
        parts = self.parts
        parts.accounting.preflight(caller, body.get("plan"), body.get("budget"))
        try:
            decision, udps = self.dispatch.route(caller, process["process_graph"], body)
        except FederationNoBackend as error:  # collections on different backends: run it split, if it can be
            if error.split_plan is None:
                raise
            download, reason = split_result(parts, caller, forwarded(body), error.split_plan)
            download.headers.update(decision_headers(RoutingDecision(error.split_plan.primary, reason)))
            return download
        decision, headers = with_credentials(decision, caller)
        self.dispatch.store_udps(self.dispatch.upstream(decision.backend_id), headers, udps)
        download = self.dispatch.proxy_result(caller, decision.backend_id, headers, forwarded(body),
                                              timeout=parts.settings.result_timeout,
                                              reference=f"aggregator-{uuid.uuid4().hex}")
        download.headers.update(decision_headers(decision))
        return download

    def validate(self, caller: FederatedCaller | None, body: dict, root: str) -> dict:
        graph = body.get("process_graph")
        if not isinstance(graph, dict) or not graph:
            return {"errors": [{"code": "ProcessGraphMissing",
                                "message": "The process has no process graph: send {\"process_graph\": {...}}."}],
                    "federation:backends": []}
        try:
            decision, udps = self.dispatch.route(caller, graph, body)
        except errors.OpenEOError as error:  # no backend can run it, or the graph cannot be read: say why
            if isinstance(error, FederationNoBackend) and error.split_plan is not None:
                return split_validation(self.parts, caller, graph, error.split_plan)
            return {"errors": [{"code": error.code, "message": error.message}], "federation:backends": []}
        if caller is not None:
            decision, headers = with_credentials(decision, caller, required=bool(udps))
        else:
            headers = {}
        upstream = self.dispatch.upstream(decision.backend_id)
        self.dispatch.store_udps(upstream, headers, udps)
        done = self.parts.in_flight.begin(decision.backend_id)
        try:
            document = upstream.request_json("POST", "validation", headers=headers, json=forwarded(body))
        finally:
            done()
        if not isinstance(document.get("errors"), list):
            raise BackendResponseInvalid(decision.backend_id, "POST /validation: no 'errors' list")
        return {**document, "federation:backends": decision.candidates}
