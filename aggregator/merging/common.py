"""What every merge shares: the federation fields, conflicts, preference order and list/map unions.

Merges are pure functions on JSON documents ``{backend_id: document}``. The input order never matters
(fan-out answers arrive in completion order): "first" always means first in ``preference()`` order,
highest weight first, ties by backend id. ``federation:backends`` lists are sorted by backend id.

Merged documents share unchanged nested values with their inputs (copying every collection and process
would cost more than the merge itself): treat inputs and outputs as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Generic, Iterable, Mapping, TypeVar

FEDERATION_BACKENDS = "federation:backends"
FEDERATION_MISSING = "federation:missing"

T = TypeVar("T")


@dataclass(frozen=True)
class Conflict:
    """Backends disagree on ``field`` of resource ``id`` (a collection, process, ...); ``chosen`` won."""

    kind: str  # "collection", "process", "file_format", "udf_runtime", "service_type"
    id: str
    field: str  # a path such as "summaries.eo:bands[B04].common_name"
    values: dict[str, Any]  # backend id -> its value
    chosen: str  # the backend whose value the merged document shows (or the value, e.g. "various")

    @property
    def shown(self) -> Any:
        """The value the merged document shows."""
        return self.values[self.chosen] if self.chosen in self.values else self.chosen

    def to_dict(self) -> dict[str, Any]:
        """The operator endpoint's entry (GET /federation/conflicts)."""
        return {"kind": self.kind, "id": self.id, "path": self.field, "values": self.values,
                "chosen": self.chosen, "shown": self.shown}


@dataclass
class Conflicts:
    """Collects the conflicts of one resource (``kind``/``id``) while it is merged."""

    kind: str
    id: str
    found: list[Conflict] = field(default_factory=list)

    def add(self, path: str, values: Mapping[str, Any], chosen: str) -> None:
        self.found.append(Conflict(self.kind, self.id, path, dict(values), chosen))


@dataclass(frozen=True)
class Merged(Generic[T]):
    document: T
    conflicts: tuple[Conflict, ...] = ()


def preference(backend_ids: Iterable[str], weights: Mapping[str, float] | None = None) -> list[str]:
    """Backend ids, most preferred first: highest weight (default 1), then by id."""
    weights = weights or {}
    return sorted(backend_ids, key=lambda b: (-weights.get(b, 1.0), b))


def backends_field(have: Iterable[str], of_all: Collection[str]) -> list[str] | None:
    """Sorted ``have`` when it is not every backend of ``of_all`` (else None: the field is left out)."""
    have = set(have)
    return None if len(have) >= len(of_all) and have.issuperset(of_all) else sorted(have)


def with_missing(document: dict, missing: Iterable[str]) -> dict:
    missing = sorted(set(missing))
    if missing:
        document[FEDERATION_MISSING] = missing
    return document


def union_lists(lists: Iterable[list | None]) -> list:
    """Ordered union of JSON lists: items in first-seen order, each once (by value, also unhashable)."""
    result: list = []
    seen: set = set()
    for items in lists:
        for item in items or ():
            try:
                if item in seen:
                    continue
                seen.add(item)
            except TypeError:  # dicts, lists: compare by value
                if item in result:
                    continue
            result.append(item)
    return result


def pick_first(values: list[tuple[str, Any]], conflicts: Conflicts | None, path: str) -> Any:
    """The most preferred backend's value; a conflict is recorded when others differ from it."""
    chosen, first = values[0]
    if conflicts is not None and any(value != first for _, value in values[1:]):
        conflicts.add(path, dict(values), chosen)
    return first


def pick_most_common(values: list[tuple[str, Any]], conflicts: Conflicts | None, path: str) -> Any:
    """The value most backends agree on (ties: the group with the most preferred backend)."""
    groups: list[list[tuple[str, Any]]] = []
    for backend_id, value in values:  # values are in preference order, so groups are too
        for group in groups:
            if group[0][1] == value:
                group.append((backend_id, value))
                break
        else:
            groups.append([(backend_id, value)])
    best = max(groups, key=len)  # max keeps the first (most preferred) of equally large groups
    if conflicts is not None and len(groups) > 1:
        conflicts.add(path, dict(values), best[0][0])
    return best[0][1]


def merge_keyed_objects(maps: list[tuple[str, Mapping[str, Any] | None]],
                        merge_one: Callable[[list[tuple[str, Any]], str], Any], *,
                        casefold: bool = False) -> dict[str, Any]:
    """Union of maps by key (``casefold``: keys equal ignoring case, the most preferred spelling kept).

    ``maps`` are ``(backend_id, map)`` in preference order; ``merge_one(values, key)`` gets every backend's
    ``(backend_id, value)`` for one key, in preference order, and returns the merged value.
    """
    spelled: dict[str, str] = {}
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for backend_id, mapping in maps:
        for key, value in (mapping or {}).items():
            norm = key.casefold() if casefold else key
            if norm not in spelled:
                spelled[norm] = key
                grouped[norm] = []
            grouped[norm].append((backend_id, value))
    return {spelled[norm]: merge_one(values, spelled[norm]) for norm, values in grouped.items()}


# -- field-by-field merges of objects (processes, file formats, UDF runtimes, service types) --

@dataclass(frozen=True)
class Site:
    """Where a value is merged: the conflict list, its path, and the backends offering its parent."""

    conflicts: Conflicts
    path: str
    owners: tuple[str, ...]

    def at(self, key: str, owners: Iterable[str] | None = None) -> "Site":
        return Site(self.conflicts, f"{self.path}.{key}" if self.path else key,
                    self.owners if owners is None else tuple(owners))


FieldRule = Callable[[list[tuple[str, Any]], Site], Any]


def most_common(values: list[tuple[str, Any]], site: Site) -> Any:
    return pick_most_common(values, None, site.path)


def most_common_recorded(values: list[tuple[str, Any]], site: Site) -> Any:
    return pick_most_common(values, site.conflicts, site.path)


def united(values: list[tuple[str, Any]], site: Site) -> list:
    return union_lists(v if isinstance(v, list) else [v] for _, v in values)


def merge_object(versions: list[tuple[str, Any]], rules: Mapping[str, FieldRule], site: Site,
                 default: FieldRule = most_common_recorded) -> Any:
    """One object offered by several backends (``versions`` in preference order), merged by ``rules``
    field by field (``default`` for the others). Fields a backend leaves out are not votes; an
    explicit null is (``"default": null`` means something)."""
    first = versions[0][1]
    if all(v == first for _, v in versions[1:]):
        return first
    if not all(isinstance(v, dict) for _, v in versions):
        return most_common_recorded(versions, site)
    owners = tuple(b for b, _ in versions)
    merged: dict[str, Any] = {}
    for key in union_lists([list(v) for _, v in versions]):
        if key == FEDERATION_BACKENDS:
            continue
        values = [(b, v[key]) for b, v in versions if key in v]
        merged[key] = rules.get(key, default)(values, site.at(key, owners))
    return merged


def merge_fields(rules: Mapping[str, FieldRule]) -> FieldRule:
    """A rule for a nested object (a process's ``returns``): merged field by field by ``rules``."""
    return lambda values, site: merge_object(values, rules, site)


def with_backends(value: Any, backends: Iterable[str], of_all: Collection[str]) -> Any:
    """``value`` with ``federation:backends`` when not every backend of ``of_all`` offers it."""
    subset = backends_field(backends, of_all)
    if subset is None or not isinstance(value, dict):
        return value
    return {**value, FEDERATION_BACKENDS: subset}


def merge_named_list(rules: Mapping[str, FieldRule]) -> FieldRule:
    """A rule for lists of objects with a ``name`` (process parameters): united by name, each merged by
    ``rules``, with ``federation:backends`` when only some of the parent's backends have it."""

    def rule(values: list[tuple[str, Any]], site: Site) -> list:
        grouped: dict[str, list[tuple[str, Any]]] = {}
        for backend_id, items in values:
            for item in items if isinstance(items, list) else ():
                name = item.get("name") if isinstance(item, dict) else None
                grouped.setdefault(str(name), []).append((backend_id, item))
        return [with_backends(merge_object(versions, rules, site.at(name)), (b for b, _ in versions), site.owners)
                for name, versions in grouped.items()]

    return rule


def merge_named_map(rules: Mapping[str, FieldRule], casefold: bool = False) -> FieldRule:
    """A rule for maps of objects (format parameters, UDF versions and libraries): united by key, like
    ``merge_named_list``."""

    def rule(values: list[tuple[str, Any]], site: Site) -> dict:
        def merge_one(versions: list[tuple[str, Any]], key: str) -> Any:
            merged = merge_object(versions, rules, site.at(key))
            return with_backends(merged, (b for b, _ in versions), site.owners)

        maps = [(b, v) for b, v in values if isinstance(v, dict)]
        return merge_keyed_objects(maps, merge_one, casefold=casefold)

    return rule
