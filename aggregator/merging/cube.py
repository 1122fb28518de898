"""Lossless merges of a collection's data-cube metadata: bands, ``cube:dimensions`` and ``summaries``.

Bands are matched by name. A band offered by only some of the backends that describe bands gets
``federation:backends``. A band's fields are merged field by field (most preferred backend first);
backends that disagree on what the band *is* (common name, wavelength, bandwidth) are a conflict.
"""

from __future__ import annotations

from typing import Any, Mapping

from aggregator.merging.common import FEDERATION_BACKENDS, Conflicts, pick_first, union_lists
from aggregator.merging.extents import union_range

# band fields that define the band: different values on two backends mean different bands under one name
BAND_IDENTITY = frozenset({"common_name", "center_wavelength", "full_width_half_max",
                           "eo:common_name", "eo:center_wavelength", "eo:full_width_half_max"})
BAND_LISTS = ("eo:bands", "bands")  # summaries (STAC 1.0 eo extension; STAC 1.1 common metadata)

# cube:dimensions fields: how each merges ("range" by dimension type, "union" of labels, "first"
# without / "record" with a recorded conflict when backends differ)
DIMENSION_RULES = {
    "type": "record",
    "axis": "record",
    "extent": "range",
    "values": "union",
    "step": "record",
    "reference_system": "record",
    "unit": "record",
    "description": "first",
}


def band_names(document: Mapping) -> set[str] | None:
    """Every band name a collection document mentions (None: it describes no bands)."""
    names: set[str] = set()
    found = False
    summaries = document.get("summaries") or {}
    for bands in (summaries.get("eo:bands"), summaries.get("bands"), document.get("bands")):
        if isinstance(bands, list):
            found = True
            names.update(b["name"] for b in bands if isinstance(b, dict) and isinstance(b.get("name"), str))
    for dimension in (document.get("cube:dimensions") or {}).values():
        if isinstance(dimension, dict) and dimension.get("type") == "bands":
            found = True
            names.update(v for v in dimension.get("values") or () if isinstance(v, str))
    return names if found else None


def merge_bands(lists: list[tuple[str, list]], holders: Mapping[str, set[str]], conflicts: Conflicts,
                path: str) -> list:
    """Band lists ``(backend_id, bands)`` in preference order -> one list, bands in first-seen order.

    ``holders`` maps each backend that describes bands to its band names (``band_names``).
    """
    by_name: dict[str, list[tuple[str, dict]]] = {}
    unnamed: list = []
    for backend_id, bands in lists:
        for band in bands:
            name = band.get("name") if isinstance(band, dict) else None
            if isinstance(name, str):
                by_name.setdefault(name, []).append((backend_id, band))
            elif band not in unnamed:
                unnamed.append(band)
    merged = []
    for name, versions in by_name.items():
        band = _merge_band(versions, conflicts, f"{path}[{name}]")
        have = [b for b, names in holders.items() if name in names]
        if len(have) < len(holders):
            band = {**band, FEDERATION_BACKENDS: sorted(have)}
        merged.append(band)
    return merged + unnamed


def _merge_band(versions: list[tuple[str, dict]], conflicts: Conflicts, path: str) -> dict:
    first = versions[0][1]
    if all(band == first for _, band in versions[1:]):
        return first
    merged: dict[str, Any] = {}
    for key in union_lists([list(band) for _, band in versions]):
        if key == FEDERATION_BACKENDS:
            continue
        values = [(b, band[key]) for b, band in versions if band.get(key) is not None]
        if values:
            merged[key] = pick_first(values, conflicts if key in BAND_IDENTITY else None, f"{path}.{key}")
    return merged


def merge_dimensions(dims: list[tuple[str, Mapping]], conflicts: Conflicts) -> dict:
    """``cube:dimensions`` ``(backend_id, dimensions)`` -> the union of dimensions, each merged by field."""
    grouped: dict[str, list[tuple[str, Mapping]]] = {}
    for backend_id, dimensions in dims:
        for name, dimension in (dimensions or {}).items():
            if isinstance(dimension, dict):
                grouped.setdefault(name, []).append((backend_id, dimension))
    return {name: _merge_dimension(versions, conflicts, f"cube:dimensions.{name}")
            for name, versions in grouped.items()}


def _merge_dimension(versions: list[tuple[str, Mapping]], conflicts: Conflicts, path: str) -> Mapping:
    first = versions[0][1]
    if all(dimension == first for _, dimension in versions[1:]):
        return first
    temporal = first.get("type") == "temporal"
    merged: dict[str, Any] = {}
    for key in union_lists([list(dimension) for _, dimension in versions]):
        present = [(b, d[key]) for b, d in versions if key in d]
        values = [(b, v) for b, v in present if v is not None] or present
        rule = DIMENSION_RULES.get(key, "record")
        if rule == "range":
            merged[key] = union_range((v for _, v in values), temporal=temporal)
        elif rule == "union" and all(isinstance(v, list) for _, v in values):
            merged[key] = union_lists(v for _, v in values)
        else:
            merged[key] = pick_first(values, conflicts if rule != "first" else None, f"{path}.{key}")
    return merged


def merge_summaries(summaries: list[tuple[str, Mapping]], holders: Mapping[str, set[str]],
                    conflicts: Conflicts) -> dict:
    """``summaries`` -> band lists merged as bands, lists united, ranges widened, anything else the most
    preferred backend's value (conflict recorded when they differ)."""
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for backend_id, summary in summaries:
        for key, value in (summary or {}).items():
            if key != FEDERATION_BACKENDS and value is not None:
                grouped.setdefault(key, []).append((backend_id, value))
    merged: dict[str, Any] = {}
    for key, values in grouped.items():
        first = values[0][1]
        if key in BAND_LISTS and all(isinstance(v, list) for _, v in values):
            # also for one backend's list: a band may be missing from another backend's dimensions
            merged[key] = merge_bands(values, holders, conflicts, f"summaries.{key}")
        elif len(values) == 1 or all(v == first for _, v in values[1:]):
            merged[key] = first
        elif all(isinstance(v, list) for _, v in values):
            merged[key] = union_lists(v for _, v in values)
        elif all(_is_range(v) for _, v in values):
            merged[key] = {**first, "minimum": min(v["minimum"] for _, v in values),
                           "maximum": max(v["maximum"] for _, v in values)}
        else:
            merged[key] = pick_first(values, conflicts, f"summaries.{key}")
    return merged


def _is_range(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("minimum"), (int, float))
            and isinstance(value.get("maximum"), (int, float)))
