"""Validates a process without running it and reports every problem found, not only the first.

Walks the graph like the executor would (same structure rules via ``Graph.parse``, same process
resolution: predefined first for namespace null/"backend", then the caller's UDPs for null/"user"),
but instead of calling processes it checks them:

* structure of every graph (top level, callbacks, UDP bodies); a graph that fails ``Graph.parse`` is
  reported once and not descended into;
* every node: known process, no unsupported / missing required arguments, literal argument values
  against the parameter's JSON schema (references and callbacks are not values yet);
* URL arguments (load_stac's and load_url's ``url``, aggregate_spatial's ``geometries`` as a URL)
  against the fetch policy's allow-list, without fetching or resolving them (url_checks.py);
* callbacks and UDP bodies recursively (each UDP body once; cycles between UDPs are reported);
* load_collection: collection, bands, extents and the item search (no pixels read);
  save_result: output format and options; load_url: input format and options (nothing fetched);
* ndvi's nir/red and filter_bands' bands against the bands that reach them from load_collection, by
  name or common name (band_checks.py).

Every error is ``{"id": path, "code", "message", "links"}``; the path is the node id, with callback
arguments and UDP ids in between for nested graphs: ``reduce1/reducer/mean``, ``call1/my_udp/sub``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apicore import errors
from backend.processing.engine.graph import Graph
from backend.processing.namespaces import is_url, process_at
from backend.processing.validation import data_checks
from backend.processing.validation.band_checks import check_bands
from backend.processing.validation.context import ValidationContext, as_validation_context
from backend.processing.validation.schemas import is_callback, is_reference, schema_violation, with_hint
from backend.processing.validation.url_checks import check_urls

MAX_NESTING = 64  # callbacks and UDP calls inside each other
TOP_LEVEL = "process_graph"  # the id of errors about the top-level graph as a whole


def validate_process(process: Any, context: Any) -> list[dict]:
    """All problems of a process object (``{"process_graph": {...}, "parameters"?: [...]}``) as openEO
    error dicts; an empty list means valid. ``context``: a ValidationContext or the executor's
    RunContext. Reads no pixels; load_collection nodes with known arguments cost one item search.
    Unresolvable process parameters (``from_parameter``) are never an error, as the API demands."""
    walker = _Walker(as_validation_context(context))
    if not isinstance(process, dict):
        walker.report(TOP_LEVEL, errors.ProcessGraphMissing(
            "Send the process as an object with a 'process_graph', e.g. {\"process_graph\": {...}}."))
    elif "process_graph" not in process:
        walker.report(TOP_LEVEL, errors.ProcessGraphMissing(
            "The process has no 'process_graph': send {\"process_graph\": {node id: node, ...}}."))
    else:
        try:
            walker.graph(process["process_graph"], "", "the process graph", 0)
        except RecursionError:  # literals nested thousands deep; callbacks are capped at MAX_NESTING
            walker.report(TOP_LEVEL, errors.ProcessGraphInvalid("The process is nested too deeply to be checked."))
    return walker.found


def _join(base: str, part: Any) -> str:
    return f"{base}/{part}" if base else str(part)


def _callbacks(arguments: dict, base: str) -> Iterator[tuple[str, Any]]:
    """(path, process graph) of every callback in the arguments, in argument order, at any depth."""
    stack: list[tuple[str, Any]] = [(_join(base, name), value) for name, value in reversed(arguments.items())]
    while stack:
        path, value = stack.pop()
        if is_callback(value):
            yield path, value["process_graph"]
        elif isinstance(value, dict) and not is_reference(value):
            stack.extend((_join(path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((_join(path, index), item) for index, item in reversed(list(enumerate(value))))


class _Walker:
    def __init__(self, context: ValidationContext):
        self.context = context
        self.found: list[dict] = []
        self._udps: dict[str, dict | None] = {}  # lookups, once per process id
        self._udps_walked: set[str] = set()
        self._udp_stack: list[str] = []

    def report(self, path: str, error: errors.OpenEOError, node: bool = False) -> None:
        message = f"Node '{path}': {error.message}" if node else error.message
        self.found.append({"id": path, "code": error.code, "message": message, "links": list(error.links)})

    # --- graphs and nodes ------------------------------------------------------------------------

    def graph(self, process_graph: Any, base: str, where: str, depth: int) -> None:
        if depth > MAX_NESTING:
            self.report(base or TOP_LEVEL, errors.ProcessGraphInvalid(
                f"{where} is nested more than {MAX_NESTING} levels deep (callbacks and user-defined processes)."))
            return
        if isinstance(process_graph, dict):  # Graph.parse adds missing "arguments": not to the caller's nodes
            process_graph = {node_id: dict(node) if isinstance(node, dict) else node
                             for node_id, node in process_graph.items()}
        try:
            Graph.parse(process_graph, where)
        except errors.OpenEOError as exc:
            self.report(base or TOP_LEVEL, exc)
            return
        for node_id, node in process_graph.items():  # every node, also those the result does not need
            self.node(_join(base, node_id), node, depth)
        if self.context.collections is not None:
            for node_id, error in check_bands(process_graph, self._collection_metadata):
                self.report(_join(base, node_id), error, node=True)

    def node(self, path: str, node: dict, depth: int) -> None:
        process_id, namespace, arguments = node["process_id"], node.get("namespace"), node["arguments"]
        spec = udp = None
        if namespace in (None, "backend"):
            spec = self.context.predefined(process_id)
        if spec is None and namespace in (None, "user"):
            udp = self._udp(process_id)
        if is_url(namespace) and self.context.run_context is not None:
            try:
                udp = process_at(namespace, process_id, self.context.run_context)
            except errors.OpenEOError as error:
                self.report(path, error, node=True)
                return
        if spec is not None:
            invalid = self.arguments(path, process_id, spec.get("parameters") or [], arguments, strict=True)
            self.data(path, process_id, arguments, invalid)
            for error in check_urls(process_id, arguments, invalid, self.context.fetch_policy):
                self.report(path, error, node=True)
        elif udp is not None:
            self.arguments(path, process_id, udp.get("parameters") or [], arguments, strict=False)
        else:
            self.report(path, self._unsupported(process_id, namespace), node=True)
        for callback_path, process_graph in _callbacks(arguments, path):
            self.graph(process_graph, callback_path, f"the child process graph '{callback_path}'", depth + 1)
        if udp is not None:
            self.udp_body(path, process_id, udp, depth)

    def arguments(self, path: str, process_id: str, parameters: list, arguments: dict, strict: bool) -> set[str]:
        """Unsupported, missing and mistyped arguments; returns the names of the bad ones.

        ``strict=False`` (UDPs) follows the executor: undeclared arguments are refused only when the
        UDP declares parameters at all."""
        declared = {p["name"]: p for p in parameters if isinstance(p, dict) and isinstance(p.get("name"), str)}
        bad: set[str] = set()
        if strict or declared:
            for name in arguments:
                if name not in declared:
                    bad.add(name)
                    self.report(path, errors.ProcessParameterUnsupported(process=process_id, parameter=name),
                                node=True)
        for name, parameter in declared.items():
            if name not in arguments and "default" not in parameter and not parameter.get("optional", False):
                bad.add(name)
                self.report(path, errors.ProcessParameterRequired(process=process_id, parameter=name), node=True)
        for name, value in arguments.items():
            if name not in declared or is_reference(value) or is_callback(value):
                continue
            reason = schema_violation(declared[name].get("schema"), value)
            if reason is not None:
                reason = with_hint(reason, process_id, name, value)
                bad.add(name)
                self.report(path, errors.ProcessParameterInvalid(process=process_id, parameter=name, reason=reason),
                            node=True)
        return bad

    def data(self, path: str, process_id: str, arguments: dict, invalid: set[str]) -> None:
        if process_id == "load_collection":
            found = data_checks.check_load_collection(arguments, invalid, self.context)
        elif process_id == "save_result" and self.context.output_formats:
            found = data_checks.check_save_result(arguments, invalid)
        elif process_id == "load_url" and self.context.output_formats:  # (a federation front skips both)
            found = data_checks.check_load_url(arguments, invalid)
        elif process_id == "load_uploaded_files" and self.context.output_formats:
            found = data_checks.check_load_uploaded_files(arguments, invalid)
        else:
            return
        for error in found:
            self.report(path, error, node=True)

    def _collection_metadata(self, collection_id: str) -> dict | None:
        try:
            return self.context.collections.describe(collection_id, self.context.api_root)
        except errors.OpenEOError:
            return None  # an unknown collection: load_collection's check reports it

    # --- user-defined processes ------------------------------------------------------------------

    def _udp(self, process_id: str) -> dict | None:
        if process_id not in self._udps:
            udp = self.context.udp_lookup(process_id)
            self._udps[process_id] = udp if isinstance(udp, dict) else None
        return self._udps[process_id]

    def udp_body(self, path: str, process_id: str, udp: dict, depth: int) -> None:
        """The body of a UDP, once per validation; a UDP reached again while walking itself is a cycle."""
        if process_id in self._udp_stack:
            chain = " -> ".join(self._udp_stack[self._udp_stack.index(process_id):] + [process_id])
            self.report(path, errors.ProcessGraphInvalid(
                f"user-defined processes call each other in a cycle: {chain}; a process cannot use itself."),
                node=True)
            return
        if process_id in self._udps_walked:
            return
        self._udps_walked.add(process_id)
        self._udp_stack.append(process_id)
        try:
            self.graph(udp.get("process_graph"), _join(path, process_id), f"user-defined process '{process_id}'",
                       depth + 1)
        finally:
            self._udp_stack.pop()

    def _unsupported(self, process_id: str, namespace: Any) -> errors.OpenEOError:
        anonymous = not self.context.authenticated
        if namespace is None:
            reason = ("is not a predefined process (log in to use your user-defined processes)" if anonymous
                      else "is neither a predefined process nor one of your user-defined processes")
        elif namespace == "backend":
            reason = "is not a predefined process of this back-end (see GET /processes)"
        elif namespace == "user":
            reason = ("is a user-defined process, which needs authentication" if anonymous
                      else "is not one of your user-defined processes (see GET /process_graphs)")
        else:
            reason = f"cannot be loaded from namespace {namespace!r}: use null, 'backend' or 'user'"
        return errors.ProcessUnsupported(f"process '{process_id}' {reason}.", process=process_id,
                                         namespace=namespace if isinstance(namespace, str) else "backend")
