"""User-defined processes: /process_graphs and /process_graphs/{id}, visible to their owner only."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify

from apicore import errors
from apicore.views.context import api, api_root, json_body, require_caller

bp = Blueprint("process_graphs", __name__)

# fullmatch: `$` would let a trailing line break through; 255 = the database column's size (a longer id was
# a 500 on PostgreSQL)
PROCESS_ID = re.compile(r"\w{1,255}")
SUMMARY_KEYS = ("id", "summary", "description", "categories", "parameters", "returns", "deprecated",
                "experimental")


@bp.get("/process_graphs")
def list_udps():
    listing = api().udps.listing(require_caller(), api_root())
    processes = [_summary(spec) for spec in listing["processes"]]
    return jsonify({**listing, "processes": processes,
                    "links": [{"rel": "self", "href": f"{api_root()}/process_graphs", "type": "application/json"}]})


def _summary(spec: dict) -> dict:
    """The listed fields of a process, and any ``federation:`` fields an aggregator added."""
    fields = {k: spec[k] for k in SUMMARY_KEYS if k in spec}
    fields.update((k, v) for k, v in spec.items() if k.startswith("federation:"))
    return fields


@bp.get("/process_graphs/<process_graph_id>")
def describe_udp(process_graph_id: str):
    spec = api().udps.get(require_caller(), _checked_id(process_graph_id))
    if spec is None:
        raise errors.ProcessGraphNotFound(identifier=process_graph_id)
    return jsonify(spec)


@bp.put("/process_graphs/<process_graph_id>")
def store_udp(process_graph_id: str):
    caller = require_caller()
    if not PROCESS_ID.fullmatch(process_graph_id):
        raise errors.ProcessGraphIdInvalid(identifier=process_graph_id)
    process_id = process_graph_id
    if api().processes.is_predefined(process_id):
        raise errors.PredefinedProcessExists(
            f"'{process_id}' is a predefined process; choose another id for your process.")
    spec = _checked_process(json_body())
    spec["id"] = process_id
    api().udps.put(caller, process_id, spec)
    return Response(status=200)


@bp.delete("/process_graphs/<process_graph_id>")
def delete_udp(process_graph_id: str):
    if not api().udps.delete(require_caller(), _checked_id(process_graph_id)):
        raise errors.ProcessGraphNotFound(identifier=process_graph_id)
    return Response(status=204)


def _checked_id(process_id: str) -> str:
    """An id that cannot have been stored is simply not found."""
    if not PROCESS_ID.fullmatch(process_id):
        raise errors.ProcessGraphNotFound(
            f"'{process_id}' is not a valid process id: use letters, digits and underscores only (at most 255).")
    return process_id


def _checked_process(body) -> dict:
    """A process object with a non-empty ``process_graph`` of well-formed nodes."""
    if not isinstance(body, dict):
        raise errors.ProcessGraphMissing("Send a JSON object with a 'process_graph' field.")
    graph = body.get("process_graph")
    if not isinstance(graph, dict) or not graph:
        raise errors.ProcessGraphMissing(
            "The request body needs a non-empty 'process_graph' object (node id -> node).")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            raise errors.ProcessGraphInvalid(f"Node '{node_id}' needs a 'process_id' string.")
        if not isinstance(node.get("arguments", {}), dict):
            raise errors.ProcessGraphInvalid(f"The 'arguments' of node '{node_id}' must be an object.")
    if not any(node.get("result") is True for node in graph.values()):
        raise errors.ProcessGraphInvalid("Mark the final node of the process graph with \"result\": true.")
    for key in ("parameters", "returns", "summary", "description", "categories"):
        if key in body and body[key] is not None:
            _expect_type(key, body[key])
    return {k: v for k, v in body.items() if v is not None}


def _expect_type(key: str, value) -> None:
    expected = {"parameters": list, "returns": dict, "summary": str, "description": str, "categories": list}[key]
    if not isinstance(value, expected):
        raise errors.ProcessGraphInvalid(f"'{key}' must be of JSON type {expected.__name__}.")
