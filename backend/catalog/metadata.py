"""STAC collection → openEO collection metadata (STAC 1.0 + datacube extension).

Collections that already carry ``cube:dimensions`` keep them (band order included); for others the
dimensions are derived from the extent and ``eo:bands`` (summaries, or item_assets as a fallback).
"""

from __future__ import annotations

import copy
from typing import Any

DATACUBE_EXTENSION = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
EO_EXTENSION = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
VERSION_EXTENSION = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
ITEM_ASSETS_EXTENSION = "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"


def to_openeo_collection(stac: dict, openeo_id: str, api_root: str) -> dict[str, Any]:
    """The full description served at /collections/{id}; ``api_root`` ends without a slash."""
    collection = copy.deepcopy(stac)
    collection["type"] = "Collection"
    collection["stac_version"] = "1.0.0"
    collection["id"] = openeo_id
    collection.setdefault("title", openeo_id)
    collection.setdefault("description", collection.get("title") or openeo_id)
    collection.setdefault("license", "proprietary")
    collection.setdefault("extent", {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                     "temporal": {"interval": [[None, None]]}})
    bands = band_metadata(collection)
    summaries = collection.setdefault("summaries", {})
    if bands and "eo:bands" not in summaries:
        summaries["eo:bands"] = bands
    summaries.pop("bands", None)  # STAC 1.1 field; eo:bands carries the same in STAC 1.0
    if "cube:dimensions" not in collection:
        collection["cube:dimensions"] = _derived_dimensions(collection, bands)
    collection["stac_extensions"] = _stac_10_extensions(collection, bands)
    if collection["license"] == "other":  # STAC 1.1 spelling (pystac migrates to it); 1.0 says proprietary
        collection["license"] = "proprietary"
    collection["links"] = _links(collection.get("links", []), openeo_id, api_root)
    return collection


def _stac_10_extensions(collection: dict, bands: list[dict]) -> list[str]:
    """Extensions a STAC 1.0 reader needs for the fields present (several are core in STAC 1.1)."""
    extensions = [e for e in collection.get("stac_extensions", []) if "/eo/v2" not in e]
    wanted = [DATACUBE_EXTENSION,
              EO_EXTENSION if bands else None,
              VERSION_EXTENSION if "version" in collection or "deprecated" in collection else None,
              ITEM_ASSETS_EXTENSION if "item_assets" in collection else None]
    for extension in wanted:
        family = extension.rsplit("/v", 1)[0] if extension else None
        if family and not any(e.startswith(family + "/") for e in extensions):
            extensions.append(extension)
    return extensions


def collection_summary(full: dict) -> dict[str, Any]:
    """The shorter entry in the /collections listing (the spec allows dropping the cube details)."""
    keys = ("stac_version", "stac_extensions", "type", "id", "title", "description", "keywords", "version",
            "deprecated", "license", "providers", "extent", "links")
    return {key: full[key] for key in keys if key in full}


def band_metadata(collection: dict) -> list[dict]:
    summaries = collection.get("summaries", {})
    for field in ("eo:bands", "bands"):
        if isinstance(summaries.get(field), list) and summaries[field]:
            return [_eo_band(b) for b in summaries[field]]
    bands = []
    for key, asset in collection.get("item_assets", {}).items():
        for band in asset.get("eo:bands") or asset.get("bands") or []:
            bands.append(_eo_band({**band, "name": band.get("name", key)}))
    return bands


def _eo_band(band: dict) -> dict:
    """STAC 1.1 ``bands`` entries prefix eo fields (``eo:common_name``); STAC 1.0 eo:bands do not."""
    return {key.removeprefix("eo:"): value for key, value in band.items()}


def _derived_dimensions(collection: dict, bands: list[dict]) -> dict[str, Any]:
    bbox = collection["extent"]["spatial"]["bbox"][0]
    interval = collection["extent"]["temporal"]["interval"][0]
    dimensions: dict[str, Any] = {
        "x": {"type": "spatial", "axis": "x", "extent": [bbox[0], bbox[2]], "reference_system": 4326},
        "y": {"type": "spatial", "axis": "y", "extent": [bbox[1], bbox[3]], "reference_system": 4326},
        "t": {"type": "temporal", "extent": list(interval), "step": None},
    }
    if bands:
        dimensions["bands"] = {"type": "bands", "values": [b["name"] for b in bands]}
    return dimensions


def _links(source_links: list[dict], openeo_id: str, api_root: str) -> list[dict]:
    """Our navigation links; the source's own links (license, about, ...) are kept when absolute."""
    own = [
        {"rel": "self", "href": f"{api_root}/collections/{openeo_id}", "type": "application/json"},
        {"rel": "root", "href": f"{api_root}/", "type": "application/json"},
        {"rel": "parent", "href": f"{api_root}/collections", "type": "application/json"},
        {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
         "href": f"{api_root}/collections/{openeo_id}/queryables", "type": "application/schema+json"},
    ]
    navigation = {"self", "root", "parent", "child", "item", "items", "collection",
                  "http://www.opengis.net/def/rel/ogc/1.0/queryables"}
    kept = [link for link in source_links
            if link.get("rel") not in navigation and str(link.get("href", "")).startswith(("http://", "https://"))]
    return own + kept
