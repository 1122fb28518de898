"""Evaluates process graphs: every node once per invocation, callbacks afresh on every call.

Written instead of using openeo-pg-parser-networkx's walker, which reuses callback results across
invocations, loses references in long chains and grows super-linearly (see PITFALLS.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from apicore import errors
from backend.processing.engine.graph import Graph
from backend.processing.engine.implementations import Implementations, checked_arguments
from backend.processing.namespaces import is_url, process_at

log = logging.getLogger(__name__)

# Keyword arguments that openeo-processes-dask hands to callbacks for the processes inside them
# (e.g. xarray's reduce passes `axis`); they are forwarded to every process that accepts them.
INHERITED_KWARGS = ("axis", "keepdims", "dim_labels", "source_transposed_axis")
MAX_UDP_DEPTH = 32


def _log_message(level: str, message: str, **extra: Any) -> None:
    """Where process log entries (inspect) go outside batch jobs: the server log."""
    log.log({"debug": 10, "warning": 30, "error": 40}.get(level, 20), "%s %s", message, extra)


@dataclass
class RunContext:
    """What processes may need beyond their arguments; one per request or job."""

    user_id: str | None = None
    services: Any = None
    api_root: str = ""
    max_pixels: int | None = None  # per loaded cube; None = no limit (batch jobs)
    udp_lookup: Callable[[str], dict | None] = lambda process_id: None
    outputs: list[tuple[Any, str, dict]] = field(default_factory=list)  # save_result calls
    udp_stack: list[str] = field(default_factory=list)
    log: Callable[..., None] = _log_message  # (level, message, code=, data=) of processes such as inspect
    input_values: int = 0  # values of the cubes the graph loaded (usage: input megapixels)
    inputs: list[dict] = field(default_factory=list)  # the items loaded (provenance.input_entries)
    published_calls: set[tuple[str, str]] = field(default_factory=set)  # this backend's published UDPs run
    # A grid every load_collection loads onto instead of its own extent (a web service tile):
    # {"spatial_extent": {...}, "target_crs": ..., "target_resolution": ...}; None = the graph's own.
    load_grid: dict | None = None

    def record_items(self, collection: str, items) -> None:
        """Note the STAC items a load read (the result's provenance)."""
        from backend.processing.provenance import input_entries

        self.inputs.extend(input_entries(collection, items))

    def __getstate__(self) -> dict:
        # Callbacks may travel inside Dask graphs to cluster workers: the services (DB engine, caches)
        # and lookups stay behind; a worker never needs them once the graph is built.
        state = dict(self.__dict__)
        state.update(services=None, udp_lookup=_no_udp, outputs=[], log=_log_message, inputs=[],
                     published_calls=set())
        return state


def _no_udp(process_id: str) -> None:
    return None


class Executor:
    def __init__(self, implementations: Implementations, context: RunContext):
        self.implementations = implementations
        self.context = context

    def run(self, graph: Graph, parameters: dict[str, Any], inherited: dict[str, Any] | None = None) -> Any:
        results: dict[str, Any] = {}
        for node_id in graph.order:
            node = graph.nodes[node_id]
            arguments = {name: self._resolve(value, results, parameters)
                         for name, value in node["arguments"].items()}
            results[node_id] = self.call(node["process_id"], node.get("namespace"), arguments, node_id,
                                         inherited or {})
        return results[graph.result]

    def _resolve(self, value: Any, results: dict[str, Any], parameters: dict[str, Any]) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and "from_node" in value:
                return results[value["from_node"]]
            if len(value) == 1 and "from_parameter" in value:
                name = value["from_parameter"]
                if name not in parameters:
                    raise errors.ProcessGraphInvalid(
                        f"The process graph uses parameter '{name}', but no value was given for it.")
                return parameters[name]
            if "process_graph" in value and len(value) == 1:
                return Callback(self, Graph.parse(value["process_graph"], "a child process graph"), parameters)
            return {key: self._resolve(item, results, parameters) for key, item in value.items()}
        if isinstance(value, list):
            return [self._resolve(item, results, parameters) for item in value]
        return value

    def call(self, process_id: str, namespace: str | None, arguments: dict[str, Any], node_id: str,
             inherited: dict[str, Any]) -> Any:
        if namespace in (None, "backend") and process_id in self.implementations:
            return self.implementations.call(process_id, arguments, inherited, self.context, node_id)
        if namespace in (None, "user"):
            udp = self.context.udp_lookup(process_id)
            if udp is not None:
                return self._call_udp(process_id, udp, arguments, node_id)
        if is_url(namespace):  # a published process of this or another backend
            return self._call_udp(process_id, process_at(namespace, process_id, self.context), arguments, node_id)
        raise errors.ProcessUnsupported(process=process_id, namespace=namespace or "backend")

    def _call_udp(self, process_id: str, udp: dict, arguments: dict[str, Any], node_id: str) -> Any:
        stack = self.context.udp_stack
        if process_id in stack or len(stack) >= MAX_UDP_DEPTH:
            chain = " -> ".join(stack + [process_id])
            raise errors.ProcessGraphInvalid(f"User-defined processes call each other in a cycle: {chain}.")
        parameters = _udp_parameters(process_id, udp, arguments)
        stack.append(process_id)
        try:
            return self.run(Graph.parse(udp.get("process_graph"), f"user-defined process '{process_id}'"),
                            parameters)
        finally:
            stack.pop()


def _udp_parameters(process_id: str, udp: dict, arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments of a UDP call with the declared defaults applied; unknown and missing ones refused.
    A UDP that declares no parameters takes whatever it is given."""
    declared = [p for p in udp.get("parameters") or [] if isinstance(p, dict) and "name" in p]
    return checked_arguments(process_id, {"parameters": declared}, arguments) if declared else dict(arguments)


class Callback:
    """A child process graph as the callable openeo-processes-dask expects (e.g. a reducer)."""

    def __init__(self, executor: Executor, graph: Graph, parent_parameters: dict[str, Any]):
        self.executor = executor
        self.graph = graph
        self.parent_parameters = parent_parameters

    def __call__(self, *args: Any, positional_parameters: dict[str, int] | None = None,
                 named_parameters: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        parameters = dict(self.parent_parameters)
        parameters.update(named_parameters or {})
        for name, index in (positional_parameters or {}).items():
            parameters[name] = args[index]
        if "context" in kwargs:
            parameters.setdefault("context", kwargs.pop("context"))
        inherited = {key: kwargs[key] for key in INHERITED_KWARGS if key in kwargs}
        return self.executor.run(self.graph, parameters, inherited)

    def resolve(self, value: Any, **parameters: Any) -> Any:
        """An argument value of this callback's nodes, resolved without running the callback (e.g. the
        code and context of a run_udf that processes/udf.py runs on whole chunks instead)."""
        return self.executor._resolve(value, {}, {**self.parent_parameters, **parameters})

    def with_parameters(self, **parameters: Any) -> Any:
        """Call with named parameters only (e.g. a property filter's ``value``)."""
        return self(named_parameters=parameters)
