"""The STAC documents of a finished job's results: the Collection at GET /jobs/{id}/results (and at its
signed ``canonical`` URL) and one Item per data file.

Both are built to be read without a token by any STAC client (pystac, odc-stac, the openEO Python
client's load_stac metadata, other backends' load_stac): every href is absolute and signed, items carry
``collection`` and links back to the signed Collection, the Collection carries ``summaries.eo:bands`` and
``item_assets`` (band names and which file holds them), and all links of one document share one expiry.
Only data files are items: a quicklook has no georeferencing, it stays a Collection asset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from backend.jobs.assets import EXTENSIONS, collection_extent
from backend.jobs.signing import UrlSigner
from backend.processing.provenance import PROCESSING_EXTENSION

ITEM_ASSETS = "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"
ITEM_ASSET_FIELDS = ("title", "type", "roles", "eo:bands", "raster:bands")  # per-file fields (size, ...) stay out
# openeo:status of partial results: the spec's result_status has running, canceled, finished and error; a
# queued job is on its way like a running one (a created one has no results document: JobNotStarted)
RESULT_STATUS = {"queued": "running"}
JSON, GEOJSON = "application/json", "application/geo+json"


@dataclass(frozen=True)
class ResultLinks:
    """Signed URLs of one job's results, all expiring at ``expires`` (epoch seconds)."""

    signer: UrlSigner
    api_root: str
    job_id: str
    expires: int

    def asset(self, name: str) -> str:
        return self.signer.url(self.api_root, self.job_id, name, expires=self.expires)

    def item(self, name: str) -> str:
        return self.signer.url(self.api_root, self.job_id, name, kind="items", expires=self.expires)

    def document(self) -> str:
        return self.signer.document_url(self.api_root, self.job_id, expires=self.expires)

    def expires_rfc3339(self) -> str:
        return datetime.fromtimestamp(self.expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_data(asset: dict) -> bool:
    return "data" in (asset.get("roles") or [])


def results_collection(job: Any, assets: dict[str, dict], links: ResultLinks, signed: bool,
                       provenance: dict | None = None, derived_from: list[dict] | None = None) -> dict:
    """The results Collection; ``assets`` are the published asset fields (empty while not finished).
    ``signed``: served at the signed URL (self is that URL; no links that need a token). ``provenance``:
    the STAC processing fields of the run (on the Collection's processor provider, as the processing
    extension puts them), ``derived_from``: links to its input items."""
    finished = job.status == "finished"
    hrefs = {name: {"href": links.asset(name), **fields} for name, fields in assets.items()}
    data = {name: fields for name, fields in assets.items() if is_data(fields)}
    document: dict[str, Any] = {
        "stac_version": "1.0.0",
        "stac_extensions": EXTENSIONS + ([ITEM_ASSETS] if data else []),
        "type": "Collection",
        "id": job.job_id,
        "title": job.title or f"Results of batch job {job.job_id}",
        "description": job.description or "Results of an openEO batch job.",
        "license": "proprietary",
        "extent": collection_extent(hrefs),
        "openeo:status": RESULT_STATUS.get(job.status, job.status),
        "expires": links.expires_rfc3339(),
    }
    if provenance:
        document["stac_extensions"] = [*document["stac_extensions"], PROCESSING_EXTENSION]
        document["providers"] = [{"name": "openEO backend", "roles": ["processor"], **provenance}]
    bands = _bands(data.values())
    if bands:
        document["summaries"] = {"eo:bands": bands}
    if data:
        document["item_assets"] = {name: {k: fields[k] for k in ITEM_ASSET_FIELDS if k in fields}
                                   for name, fields in data.items()}
    document["assets"] = hrefs
    own = f"{links.api_root}/jobs/{job.job_id}/results"
    canonical = links.document() if finished else None
    document["links"] = (
        [{"rel": "self", "href": canonical if signed else own, "type": JSON}]
        + ([{"rel": "canonical", "href": canonical, "type": JSON, "title": "Signed URL of these results"},
            {"rel": "root", "href": canonical, "type": JSON}] if canonical else [])
        + ([] if signed else [{"rel": "monitor", "href": f"{links.api_root}/jobs/{job.job_id}/logs",
                                "type": JSON}])
        + [{"rel": "item", "href": links.item(name), "type": GEOJSON, "title": name} for name in data]
        + list(derived_from or []))
    if job.usage and not signed:
        document["openeo:usage"] = job.usage
    return document


def _bands(assets) -> list[dict]:
    """eo:bands of the data files, each name once, in file order."""
    bands, seen = [], set()
    for fields in assets:
        for band in fields.get("eo:bands") or []:
            if band.get("name") and band["name"] not in seen:
                seen.add(band["name"])
                bands.append(band)
    return bands


def result_item(job_id: str, name: str, fields: dict, finished: str, links: ResultLinks,
                provenance: dict | None = None) -> dict:
    """The Item of one result file; ``finished`` (RFC 3339) dates files without dates of their own;
    ``provenance``: the run's STAC processing fields, among the Item's properties."""
    asset = {"href": links.asset(name), **fields}
    extent = collection_extent({name: asset})
    west, south, east, north = extent["spatial"]["bbox"][0]
    start, end = extent["temporal"]["interval"][0]
    properties = {"datetime": None, "start_datetime": start, "end_datetime": end} if start else {"datetime": finished}
    collection = links.document()
    properties.update(provenance or {})
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": name,
        "stac_extensions": EXTENSIONS + ([PROCESSING_EXTENSION] if provenance else []),
        "collection": job_id,
        "bbox": [west, south, east, north],
        "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                         [west, north], [west, south]]]},
        "properties": properties,
        "assets": {name: asset},
        "links": [{"rel": "self", "href": links.item(name), "type": GEOJSON},
                  {"rel": "collection", "href": collection, "type": JSON},
                  {"rel": "parent", "href": collection, "type": JSON},
                  {"rel": "root", "href": collection, "type": JSON}],
    }
