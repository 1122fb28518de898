"""/collections/{id}/queryables: a JSON Schema of the item properties a user can filter on."""

from __future__ import annotations

from typing import Any

from apicore.json_types import json_type

# Properties that are structural rather than filterable.
_SKIP = {"datetime", "start_datetime", "end_datetime", "created", "updated"}

# Known semantics of common properties; others get their type from the observed values.
_KNOWN: dict[str, dict[str, Any]] = {
    "eo:cloud_cover": {"title": "Cloud cover (%)", "type": "number", "minimum": 0, "maximum": 100},
    "platform": {"title": "Platform", "type": "string"},
    "constellation": {"title": "Constellation", "type": "string"},
    "instruments": {"title": "Instruments", "type": "array", "items": {"type": "string"}},
    "proj:epsg": {"title": "EPSG code", "type": "integer"},
    "proj:code": {"title": "CRS code", "type": "string"},
    "gsd": {"title": "Ground sample distance (m)", "type": "number"},
}


def queryables(openeo_id: str, items: list[dict], api_root: str) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "datetime": {"title": "Acquisition time", "type": "string", "format": "date-time"},
    }
    for item in items:
        for name, value in item.get("properties", {}).items():
            if name in _SKIP or name in properties or isinstance(value, (dict,)) or value is None:
                continue
            if name.startswith("proj:") and name not in _KNOWN:
                continue  # shapes and transforms are not useful filters
            properties[name] = _KNOWN.get(name) or {"title": name, "type": json_type(value)}
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{api_root}/collections/{openeo_id}/queryables",
        "type": "object",
        "title": f"Queryables of {openeo_id}",
        "properties": properties,
        "additionalProperties": False,
    }
