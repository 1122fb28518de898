"""Job references inside process graphs, between the user's federated ids and the backends' own.

A user's graph reads a federated job's results two ways:

- ``load_result`` with the federated id (``{"id": "j1-..."}``). load_result reads a job *of the backend
  that runs the graph*, so the graph must run on the job's backend (``required_backends``, for routing)
  and the id becomes that backend's job id.
- ``load_stac`` (or ``load_result``) with the aggregator's results URL (``<root>jobs/<id>/results``).
  On the job's own backend this becomes the backend's results URL; on another backend, which cannot
  use the user's token there, the results' signed ``canonical`` URL (fetched by the job service from the
  owning backend and passed in ``signed_results``).

``references`` finds them (anywhere, callbacks included), ``for_backend`` rewrites a graph for the
backend chosen to run it, and ``for_user`` turns a graph a backend returns (in a job document) back into
federated ids. None of them changes its input; arguments taken from parameters or other nodes are left
alone. Split jobs (``s1-...``) are resolved by the caller's ``resolve_split`` to the part holding their
results.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterator, Mapping

from aggregator.jobs import ids
from aggregator.jobs.ids import BackendJobRef, SplitJobRef
from aggregator.jobs.urls import JobUrls, aggregator_job_path
from aggregator.routing import FederationNoBackend
from apicore import errors

READERS = {"load_result": ("id",), "load_stac": ("url",)}  # process -> arguments naming a job or its results
SplitResolver = Callable[[SplitJobRef], BackendJobRef]


@dataclass(frozen=True)
class JobReference:
    node: str  # node path, nested ones as "parent/argument/child"
    process_id: str
    argument: str
    value: str  # as written by the user
    job: BackendJobRef  # the backend job whose results are read
    by_url: bool  # the aggregator's results URL (True) or the job id (False)
    suffix: str = ""  # what follows ``jobs/<id>/results`` in the URL (``?partial=true``, ...)


def references(process_graph: Mapping, root: str, backends: Collection[str],
               resolve_split: SplitResolver | None = None) -> list[JobReference]:
    """Every federated job the graph reads. A load_result id that is not a federated id, or names a job on
    a backend that left the federation, is a 404 naming the node."""
    found = []
    for path, node in _nodes(process_graph, ""):
        for argument in READERS.get(node.get("process_id"), ()):
            arguments = node.get("arguments") if isinstance(node.get("arguments"), dict) else {}
            value = arguments.get(argument)
            if isinstance(value, str):
                reference = _reference(path, node["process_id"], argument, value, root, backends, resolve_split)
                if reference is not None:
                    found.append(reference)
    return found


def required_backends(found: list[JobReference]) -> set[str]:
    """Backends the graph must run on: those holding a job that load_result reads by id."""
    return {reference.job.backend_id for reference in found if not reference.by_url}


def signed_urls_needed(found: list[JobReference], backend_id: str) -> list[BackendJobRef]:
    """Jobs whose signed results URL ``for_backend`` needs when the graph runs on ``backend_id``."""
    return list(dict.fromkeys(r.job for r in found if r.by_url and r.job.backend_id != backend_id))


def for_backend(process_graph: Mapping, backend_id: str, *, root: str, backend_roots: Mapping[str, str],
                signed_results: Mapping[BackendJobRef, str] | None = None,
                resolve_split: SplitResolver | None = None) -> dict:
    """A copy of the graph for ``backend_id``: federated job ids and results URLs replaced by that
    backend's, or by the signed results URLs of jobs on other backends (``signed_results``)."""
    graph = copy.deepcopy(dict(process_graph))
    signed_results = signed_results or {}
    for path, node in _nodes(graph, ""):
        for argument in READERS.get(node.get("process_id"), ()):
            arguments = node.get("arguments") if isinstance(node.get("arguments"), dict) else {}
            value = arguments.get(argument)
            if not isinstance(value, str):
                continue
            reference = _reference(path, node["process_id"], argument, value, root, backend_roots, resolve_split)
            if reference is None:
                continue
            job = reference.job
            if not reference.by_url:
                if job.backend_id != backend_id:
                    raise FederationNoBackend(reason=(
                        f"load_result at node '{path}' reads job '{value}', whose results are on backend "
                        f"'{job.backend_id}', but the graph runs on '{backend_id}'. Read them with load_stac "
                        f"and the job's results URL instead, or run the graph on '{job.backend_id}'."))
                arguments[argument] = job.job_id
            elif job.backend_id == backend_id:
                urls = JobUrls.of(root, backend_id, backend_roots[backend_id])
                arguments[argument] = urls.backend_job(job.job_id, "results") + reference.suffix
            elif job in signed_results:
                arguments[argument] = signed_results[job]
            else:
                raise ValueError(f"no signed results URL given for {job} (see signed_urls_needed)")
    return graph


def for_user(process_graph: Any, urls: JobUrls) -> Any:
    """A copy of a graph a backend returns, as the user wrote it: that backend's job ids in load_result
    federated, its (unsigned) job URLs the aggregator's. Anything not a graph is returned as it is."""
    if not isinstance(process_graph, dict):
        return process_graph
    graph = copy.deepcopy(process_graph)
    try:
        nodes = list(_nodes(graph, ""))
    except errors.ProcessGraphInvalid:
        return graph  # the backend's own document: shown as it is rather than refused
    for _, node in nodes:
        arguments = node.get("arguments") if isinstance(node.get("arguments"), dict) else {}
        for argument in READERS.get(node.get("process_id"), ()):
            value = arguments.get(argument)
            if not isinstance(value, str) or not value:
                continue
            if value.lower().startswith(("http://", "https://")):
                arguments[argument] = urls.to_aggregator(value)
            elif node["process_id"] == "load_result":
                arguments[argument] = ids.encode(urls.backend_id, value)
    return graph


def _reference(path: str, process_id: str, argument: str, value: str, root: str, backends: Collection[str],
               resolve_split: SplitResolver | None) -> JobReference | None:
    if value.lower().startswith(("http://", "https://")):
        parsed = aggregator_job_path(value, root)
        if parsed is None:
            return None  # another URL: not the aggregator's, nothing to translate
        federated_id, rest = parsed
        if not (rest == "results" or rest.startswith(("results?", "results/?"))):
            return None  # e.g. a signed item link: the graph gets it as written
        suffix = rest[len("results"):].lstrip("/")
        return JobReference(path, process_id, argument, value, _job(federated_id, path, backends, resolve_split),
                            True, suffix)
    if process_id != "load_result":
        return None
    return JobReference(path, process_id, argument, value, _job(value, path, backends, resolve_split), False)


def _job(federated_id: str, path: str, backends: Collection[str], resolve_split: SplitResolver | None) -> BackendJobRef:
    try:
        found = ids.locate(federated_id, backends)
    except errors.OpenEOError as error:
        raise errors.JobNotFound(f"Node '{path}' reads the results of a job that cannot be found: {error.message}",
                                 identifier=federated_id) from None
    if isinstance(found, SplitJobRef):
        if resolve_split is None:
            raise errors.JobNotFound(f"Node '{path}' reads the results of split job '{federated_id}', which "
                                     "cannot be found.", identifier=federated_id)
        return resolve_split(found)
    return found


def _nodes(graph: Any, prefix: str) -> Iterator[tuple[str, dict]]:
    """Every node of the graph and of the callbacks in its arguments, depth first, with its path."""
    if not isinstance(graph, dict):
        raise errors.ProcessGraphInvalid(f"The process graph{f' at {prefix}' if prefix else ''} must be an object "
                                         "of process nodes.")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            raise errors.ProcessGraphInvalid(f"Node '{prefix}{node_id}' must be an object with a process_id.")
        yield f"{prefix}{node_id}", node
        arguments = node.get("arguments") if isinstance(node.get("arguments"), dict) else {}
        for name, value in arguments.items():
            for callback in _callbacks(value):
                yield from _nodes(callback, f"{prefix}{node_id}/{name}/")


def _callbacks(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        if "process_graph" in value:
            yield value["process_graph"]
        else:
            for item in value.values():
                yield from _callbacks(item)
    elif isinstance(value, list):
        for item in value:
            yield from _callbacks(item)
