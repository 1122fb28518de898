"""``POST /validation`` of a graph that will be split: each part graph is validated by its backend, the
primary graph by the primary backend (its load_stac placeholders given a results URL on the part's
backend, so the primary's fetch policy is checked too: it must allow that host), and the answer says
how the graph will be split (``federation:split``) next to the backends involved (``federation:backends``).
"""

from __future__ import annotations

from typing import Any

from aggregator.routing import SplitPlan
from aggregator.split.graphs import split_graphs
from apicore import errors


def split_validation(parts, caller, graph: dict, plan: SplitPlan) -> dict:
    split = split_graphs(graph, plan)
    registry = parts.federation.registry
    placeholders = {p.node: registry.get(p.backend_id).endpoint("jobs/split-part/results/collection.json")
                    if registry.get(p.backend_id) else "" for p in split.parts}
    problems: list[dict] = []
    checks = [(split.primary, split.primary_graph(placeholders), f"the rest of the graph on {split.primary}")]
    checks += [(p.backend_id, p.process_graph, p.label) for p in split.parts]
    for backend_id, part_graph, what in checks:
        for problem in _validate(parts, caller, backend_id, part_graph):
            problems.append({**problem, "message": f"{what}: {problem.get('message', '')}"})
    return {
        "errors": problems,
        "federation:backends": list(dict.fromkeys([split.primary, *(p.backend_id for p in split.parts)])),
        "federation:split": {
            "primary": split.primary,
            "parts": [{"node": p.node, "collection": p.collection, "backend": p.backend_id} for p in split.parts],
            "message": f"This process graph will be split across backends: {split.describe()}.",
        },
    }


def _validate(parts, caller, backend_id: str, graph: dict) -> list[dict[str, Any]]:
    upstream = parts.federation.upstreams.get(backend_id)
    if upstream is None:
        return [{"code": "FederationBackendUnavailable", "message": f"backend '{backend_id}' left the federation"}]
    headers = (caller.headers_for(backend_id) or {}) if caller is not None else {}
    try:
        document = upstream.request_json("POST", "validation", headers=headers, json={"process_graph": graph})
    except errors.OpenEOError as error:
        return [{"code": error.code, "message": error.message}]
    found = document.get("errors")
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
