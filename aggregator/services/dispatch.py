"""Sending a user's process graph to one backend: shared by synchronous processing (processing.py) and
batch jobs (jobs.py).

    dispatch = Dispatch(parts)
    decision, udps = dispatch.route(caller, graph, body)              # aggregator/routing.py
    decision, headers = with_credentials(decision, caller)           # a candidate the user can log in to
    upstream = dispatch.upstream(decision.backend_id)
    dispatch.store_udps(upstream, headers, udps)                     # the user's UDPs the graph calls
    upstream.request("POST", "result", headers=headers, json=forwarded(body))
    response_headers.update(decision_headers(decision))              # OpenEO-Federation-Backend/-Reason

Routing ranks the backends by the requests this process is proxying to each (``parts.in_flight``); the
user's UDPs are stored on the chosen backend with the user's own credentials (``PUT /process_graphs/{id}``:
the backend resolves them as any UDP of that user; the aggregator's copy wins); the aggregator's own
``federation:force-backend`` is not sent on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any, Callable, Mapping

from aggregator.auth import FederatedCaller
from aggregator.federation.upstream import Upstream
from aggregator.graph_needs import GraphNeeds
from aggregator.parts import AggregatorParts
from aggregator.routing import (FORCE_BACKEND, FederationBackendUnavailable, RoutingDecision, analyse,
                                force_backend_of, route)
from aggregator.services.proxy import streamed_download
from apicore.services import Download

log = logging.getLogger(__name__)

BACKEND_HEADER = "OpenEO-Federation-Backend"
REASON_HEADER = "OpenEO-Federation-Reason"
_UNSAFE_HEADER_TEXT = re.compile(r"[^\x20-\x7e]")


class Dispatch:
    def __init__(self, parts: AggregatorParts):
        self.parts = parts

    def route(self, caller: FederatedCaller | None, graph: dict, body: Mapping, *,
              job_backend: Callable[[str], str | None] | None = None,
              force_backend: str | None = None) -> tuple[RoutingDecision, dict]:
        """The routing decision and the user's UDPs (id -> stored spec) the graph calls. ``force_backend``
        (else the body's ``federation:force-backend``) picks the backend outright."""
        needs, udps = self.needs(caller, graph)
        metadata = self.parts.metadata
        index, _ = metadata.collection_index()
        federation = self.parts.federation
        decision = route(needs, backends=federation.registry.snapshot(), collections=index,
                         processes=metadata.process_ids(), available=federation.monitor.available,
                         load=self.parts.in_flight.snapshot(), job_backend=job_backend,
                         force_backend=force_backend or force_backend_of(body))
        log.info("routed to %s: %s", decision.backend_id, decision.reason)
        return decision, udps

    def needs(self, caller: FederatedCaller | None, graph: dict) -> tuple[GraphNeeds, dict]:
        """What the graph needs (its UDPs resolved from the caller's stored ones) and those UDPs' specs."""
        specs: dict[str, dict | None] = {}

        def resolve(process_id: str) -> Any:
            if process_id not in specs:
                specs[process_id] = self.parts.udps.get(caller.user_id, process_id) if caller else None
            spec = specs[process_id]
            return spec.get("process_graph") if spec else None

        needs = analyse(graph, resolve_udp=resolve)
        return needs, {process_id: specs[process_id] for process_id in sorted(needs.udps)}

    def upstream(self, backend_id: str) -> Upstream:
        upstream = self.parts.federation.upstreams.get(backend_id)
        if upstream is None:  # removed between routing and now
            raise FederationBackendUnavailable(reason=f"Backend '{backend_id}' left the federation just now.")
        return upstream

    def store_udps(self, upstream: Upstream, headers: dict, udps: dict) -> None:
        for process_id, spec in udps.items():
            upstream.request("PUT", f"process_graphs/{process_id}", headers=headers, json=spec,
                             timeout=self.parts.settings.metadata_timeout)

    def proxy_result(self, caller: FederatedCaller, backend_id: str, headers: dict, body: dict, *,
                     timeout: float, reference: str) -> Download:
        """``POST /result`` of ``body`` on ``backend_id``, streamed back (proxy.py) and counted in its load
        while it streams; its ``OpenEO-Costs`` charged once to the federation ledger under the backend's
        ``OpenEO-Identifier`` (else ``reference``)."""
        upstream = self.upstream(backend_id)
        done = self.parts.in_flight.begin(backend_id)
        try:
            response = upstream.request("POST", "result", headers=headers, json=body, timeout=timeout, stream=True)
        except BaseException:
            done()
            raise
        download = streamed_download(upstream, response, "POST /result", done)
        try:
            reference = response.headers.get("OpenEO-Identifier") or reference
            self.parts.accounting.charge_result(caller, backend_id, reference, response.headers.get("OpenEO-Costs"))
        except BaseException:
            download.close()
            raise
        return download


def with_credentials(decision: RoutingDecision, caller: FederatedCaller, required: bool = True
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


def forwarded(body: Mapping) -> dict:
    """The request body for the backend: without the aggregator's own ``federation:force-backend``."""
    forwarded = {key: value for key, value in body.items() if key != FORCE_BACKEND}
    options = forwarded.get("job_options")
    if isinstance(options, dict) and FORCE_BACKEND in options:
        forwarded["job_options"] = {k: v for k, v in options.items() if k != FORCE_BACKEND} or None
        if forwarded["job_options"] is None:
            del forwarded["job_options"]
    return forwarded


def decision_headers(decision: RoutingDecision) -> dict[str, str]:
    """The response headers naming the chosen backend and why (printable ASCII, at most 1000 characters)."""
    reason = _UNSAFE_HEADER_TEXT.sub("?", decision.reason)[:1000]
    return {BACKEND_HEADER: decision.backend_id, REASON_HEADER: reason}
