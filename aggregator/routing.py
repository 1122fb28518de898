"""Which backend runs a process graph, and why.

    needs = analyse(body["process"]["process_graph"], resolve_udp=udps.graph_of)
    decision = route(needs, backends=registry.snapshot(), collections=listing.index,
                     processes=process_listing.by_backend, available=monitor.available,
                     load=in_flight, force_backend=force_backend_of(body))

Candidates are the backends that are available, offer every collection and process of the graph (after
the operator's allow/deny rules) and whose own extent of each loaded collection meets the requested one.
"Meets" means *intersects*: a backend that covers the request only partly still gets the request (it
returns the data it has) rather than an error, but one that covers it completely is preferred. Ranking:
complete cover first, then weight (highest first), then load (lowest first), then id. The extents
compared are each load_collection's ``spatial_extent`` (bbox in any CRS, or GeoJSON) and
``temporal_extent``; later filters (``filter_bbox``, ...) are not taken into account.

``federation:force-backend`` (``force_backend_of``) picks the backend outright; it is read from the
request's ``job_options`` (where VITO's aggregator reads it, the Python client's ``job_options=``) or
from the top level of the body (the Python client's ``additional=``).

When no backend qualifies, the error says what is missing where: ``CollectionNotFound`` (404) or
``ProcessUnsupported`` (400) when no backend offers it at all, ``FederationBackendUnavailable`` (503)
when the only capable backends are offline, else ``FederationNoBackend`` (400). The latter carries a
``split_plan`` when the graph's collections live on different backends (see ``plan_split``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Collection, Mapping, Sequence

from aggregator.federation.backends import BackendConfig
from aggregator.merging.collections import CollectionIndex
from aggregator.merging.extents import bbox_contains, bbox_intersects, interval_overlap
from aggregator.graph_needs import CollectionLoad, GraphNeeds, analyse  # noqa: F401 (re-exported)
from apicore import errors
from apicore.errors import OpenEOError

FORCE_BACKEND = "federation:force-backend"


class FederationNoBackend(OpenEOError):
    code = "FederationNoBackend"
    status = 400
    template = "No backend of the federation can run this process graph: {reason}"
    split_plan: "SplitPlan | None" = None


class FederationBackendUnavailable(OpenEOError):
    code = "FederationBackendUnavailable"
    status = 503
    template = "{reason} Try again later."


@dataclass(frozen=True)
class RoutingDecision:
    backend_id: str
    reason: str
    candidates: list[str] = field(default_factory=list)  # every qualifying backend, best first
    rejected: dict[str, str] = field(default_factory=dict)  # backend id -> why it cannot run the graph


@dataclass(frozen=True)
class SplitPlan:
    """Where each top-level load_collection could run when no backend has every collection."""

    primary: str  # runs the rest of the graph, reading the other parts' results
    parts: dict[str, str]  # load_collection node id -> backend that loads it
    options: dict[str, list[str]]  # node id -> every backend able to load it, best first


def force_backend_of(body: Mapping) -> str | None:
    """``federation:force-backend`` of a request body (``job_options`` or top level), if any."""
    options = body.get("job_options") if isinstance(body.get("job_options"), dict) else {}
    given = [value for value in (options.get(FORCE_BACKEND), body.get(FORCE_BACKEND)) if value is not None]
    if any(not isinstance(value, str) for value in given):
        raise FederationNoBackend(f"{FORCE_BACKEND} must be a backend id (a string), see `federation` in GET /.")
    found = set(given)
    if len(found) > 1:
        raise FederationNoBackend(f"{FORCE_BACKEND} is given twice with different backends "
                                  f"({', '.join(sorted(found))}): give it once.")
    return found.pop() if found else None


@dataclass
class _Assessment:
    backend: BackendConfig
    online: bool
    problems: list[str]
    covers: bool  # every load's extent is covered completely (not just intersected)
    load: float


def route(needs: GraphNeeds, *, backends: Sequence[BackendConfig], collections: CollectionIndex,
          processes: Mapping[str, Collection[str]], available: Callable[[str], bool],
          load: Mapping[str, float] | None = None, force_backend: str | None = None,
          job_backend: Callable[[str], str | None] | None = None) -> RoutingDecision:
    """The backend to run ``needs``' graph on. ``processes``: each backend's process ids (after its deny
    rules); ``job_backend(job_id)``: the backend owning a job whose results ``load_result`` reads."""
    load = load or {}
    if force_backend is not None:
        return _forced(force_backend, needs, backends, collections, processes, available, load, job_backend)
    assessed = [_assess(b, needs, collections, processes, available, load, job_backend) for b in backends]
    ranked = sorted((a for a in assessed if a.online and not a.problems),
                    key=lambda a: (not a.covers, -a.backend.weight, a.load, a.backend.id))
    rejected = {a.backend.id: _why_not(a) for a in assessed if not a.online or a.problems}
    if not ranked:
        raise _no_backend(needs, assessed, collections, processes)
    best = ranked[0]
    cover = "covers the requested extent" if best.covers else "covers the requested extent only partly"
    others = f" (other candidates: {', '.join(a.backend.id for a in ranked[1:])})" if len(ranked) > 1 else ""
    reason = (f"{best.backend.id} offers {_things(needs)}, {cover}; weight {best.backend.weight:g}, "
              f"load {best.load:g}: first of {len(ranked)} candidate(s){others}")
    return RoutingDecision(best.backend.id, reason, [a.backend.id for a in ranked], rejected)


def _things(needs: GraphNeeds) -> str:
    parts = [f"collection(s) {', '.join(sorted(needs.collections))}"] if needs.collections else []
    parts.append(f"all {len(needs.processes)} process(es) of the graph")
    return " and ".join(parts)


def _assess(backend: BackendConfig, needs: GraphNeeds, collections: CollectionIndex,
            processes: Mapping[str, Collection[str]], available: Callable[[str], bool],
            load: Mapping[str, float], job_backend: Callable[[str], str | None] | None) -> _Assessment:
    b = backend.id
    problems: list[str] = []
    if needs.collections and b not in collections.by_backend:
        problems.append("its collections are unknown (its GET /collections did not answer)")
    elif lacking := sorted(c for c in needs.collections if not collections.has(b, c)):
        problems.append(f"does not offer collection(s) {', '.join(lacking)}")
    if b not in processes:
        problems.append("its processes are unknown (its GET /processes did not answer)")
    elif lacking := sorted(needs.processes.difference(processes[b])):
        problems.append(f"does not offer process(es) {', '.join(lacking)}")
    for job_id in needs.result_jobs:
        owner = job_backend(job_id) if job_backend else None
        if owner is not None and owner != b:
            problems.append(f"load_result reads job {job_id}, whose results are on {owner}")
    covers = True
    for use in needs.loads:
        document = collections.document(use.collection_id, b)
        if document is not None:
            fits, complete = _extent_fits(use, document)
            problems.extend(fits)
            covers = covers and complete
    return _Assessment(backend, bool(available(b)), problems, covers, float(load.get(b, 0)))


def _extent_fits(use: CollectionLoad, document: Mapping) -> tuple[list[str], bool]:
    """Problems of a backend's collection extent with one load, and whether it covers the load fully."""
    extent = document.get("extent") if isinstance(document.get("extent"), dict) else {}
    bboxes = [b for b in (extent.get("spatial") or {}).get("bbox") or () if isinstance(b, list) and len(b) in (4, 6)]
    intervals = [i for i in (extent.get("temporal") or {}).get("interval") or () if isinstance(i, list) and len(i) == 2]
    problems, complete = [], True
    if use.bbox is not None and bboxes:
        precise = bboxes[1:] or bboxes[:1]
        if not any(bbox_intersects(b, use.bbox) for b in precise):
            problems.append(f"its {use.collection_id} ({_fmt_bbox(bboxes[0])}) does not reach the requested "
                            f"bbox {_fmt_bbox(use.bbox)} (node {use.node})")
        complete = bbox_contains(bboxes[0], use.bbox)
    if use.interval is not None and intervals:
        overlap = interval_overlap(intervals[0], use.interval)
        if overlap == "none":
            problems.append(f"its {use.collection_id} ({intervals[0][0]} to {intervals[0][1] or 'open end'}) has "
                            f"nothing in the requested time {use.temporal_text} (node {use.node})")
        complete = complete and overlap == "covers"
    return problems, complete


def _fmt_bbox(bbox: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in bbox) + "]"


def _why_not(a: _Assessment) -> str:
    return "; ".join((["offline"] if not a.online else []) + a.problems)


def _forced(backend_id, needs, backends, collections, processes, available, load, job_backend) -> RoutingDecision:
    ids = [b.id for b in backends]
    if backend_id not in ids:
        raise FederationNoBackend(f"{FORCE_BACKEND} names '{backend_id}', which is not a backend of this "
                                  f"federation; its backends are {', '.join(ids)}.")
    config = backends[ids.index(backend_id)]
    a = _assess(config, needs, collections, processes, available, load, job_backend)
    if not a.online:
        raise FederationBackendUnavailable(reason=f"Backend '{backend_id}', named by {FORCE_BACKEND}, is offline.")
    caveat = f" (although it {'; '.join(a.problems)})" if a.problems else ""
    rejected = {b: f"{FORCE_BACKEND} names {backend_id}" for b in ids if b != backend_id}
    return RoutingDecision(backend_id, f"{backend_id} is named by {FORCE_BACKEND}{caveat}", [backend_id], rejected)


def _no_backend(needs, assessed, collections, processes) -> OpenEOError:
    unanswered = sorted(a.backend.id for a in assessed if a.backend.id not in collections.by_backend)
    for collection_id in sorted(needs.collections):
        if not collections.backends_of(collection_id):
            if unanswered:
                return FederationBackendUnavailable(reason=f"Collection '{collection_id}' is on no backend that "
                                                           f"answered; {', '.join(unanswered)} did not.")
            return errors.CollectionNotFound(f"Collection '{collection_id}' does not exist on any backend of "
                                             "the federation (see GET /collections).", identifier=collection_id)
    silent = sorted(a.backend.id for a in assessed if a.backend.id not in processes)
    for process_id in sorted(needs.processes):
        if not any(process_id in ids for ids in processes.values()):
            if silent:
                return FederationBackendUnavailable(reason=f"Process '{process_id}' is offered by no backend that "
                                                           f"answered; {', '.join(silent)} did not.")
            return errors.ProcessUnsupported(f"Process '{process_id}' is not offered by any backend of the "
                                             "federation (see GET /processes).", process=process_id)
    if any(not a.online and not a.problems for a in assessed):
        offline = sorted(a.backend.id for a in assessed if not a.online and not a.problems)
        verb = "it is" if len(offline) == 1 else "they are"
        return FederationBackendUnavailable(reason=f"Only {', '.join(offline)} could run this process graph, "
                                                   f"and {verb} offline (see `federation` in GET /).")
    where = [f"collection {c} is on {_on(collections.backends_of(c))}"
             for c in sorted(needs.collections) if len(collections.backends_of(c)) < len(assessed)]
    where += [f"process {p} is on {_on(sorted(b for b, ids in processes.items() if p in ids))}"
              for p in sorted(needs.processes) if sum(p in ids for ids in processes.values()) < len(assessed)]
    where += [f"backend {a.backend.id} is offline" for a in assessed if not a.online]
    per_backend = "; ".join(f"{a.backend.id}: {_why_not(a)}" for a in assessed)
    error = FederationNoBackend(reason=f"{'; '.join(where) or 'no backend meets the requested extents'}. "
                                       f"Per backend: {per_backend}. Use collections and processes one backend "
                                       "offers (federation:backends in GET /collections and GET /processes), or "
                                       "change the extents.")
    error.split_plan = _plan_split(needs, assessed, collections, processes)
    return error


def _on(backend_ids: list[str]) -> str:
    return f"{backend_ids[0]} only" if len(backend_ids) == 1 else ", ".join(backend_ids)


def plan_split(needs: GraphNeeds, *, backends: Sequence[BackendConfig], collections: CollectionIndex,
               processes: Mapping[str, Collection[str]], available: Callable[[str], bool],
               load: Mapping[str, float] | None = None) -> SplitPlan | None:
    """Which backend could load each top-level load_collection, and which one runs the rest: an
    available backend offering every process (with load_stac to read the parts' results) that can load
    the most collections itself. None when some load cannot run anywhere or nests in a callback/UDP,
    or when the graph loads fewer than two collections. An analysis only: nothing is run."""
    assessed = [_assess(b, needs, collections, processes, available, load or {}, None) for b in backends]
    return _plan_split(needs, assessed, collections, processes)


def _plan_split(needs: GraphNeeds, assessed: list[_Assessment], collections: CollectionIndex,
                processes: Mapping[str, Collection[str]]) -> SplitPlan | None:
    if not needs.loads or any(not use.top_level for use in needs.loads) or len(needs.collections) < 2:
        return None
    online = [a for a in assessed if a.online]
    options: dict[str, list[str]] = {}
    for use in needs.loads:
        able = [a for a in online if collections.has(a.backend.id, use.collection_id)
                and not _extent_fits(use, collections.document(use.collection_id, a.backend.id))[0]]
        if not able:
            return None
        able.sort(key=lambda a: (-a.backend.weight, a.load, a.backend.id))
        options[use.node] = [a.backend.id for a in able]
    rest = (needs.processes - {"load_collection"}) | {"load_stac"}
    hosts = [a for a in online if a.backend.id in processes and rest <= set(processes[a.backend.id])]
    if not hosts:
        return None
    primary = min(hosts, key=lambda a: (-sum(a.backend.id in o for o in options.values()), -a.backend.weight,
                                        a.load, a.backend.id)).backend.id
    parts = {node: primary if primary in able else able[0] for node, able in options.items()}
    return SplitPlan(primary, parts, options)
