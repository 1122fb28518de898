"""Where a result came from: the process graph, the software that computed it, the input items and when.

    context.record_items("SENTINEL2_L2A", items)            # by load_collection / load_stac, per run
    record = Provenance.of(process, context.inputs, started)
    record.file_metadata()                                  # GeoTIFF tags / netCDF attributes (flat strings)
    record.finished(end).stac_fields()                      # the STAC processing extension's fields

Batch jobs put the STAC fields on their results (Collection provider and Items, result_stac.py) and the
flat ones in their files; synchronous results carry the flat ones in the formats that have room for them
(GeoTIFF, netCDF). Input items are named by collection and id; their href only when it is a web URL
(the items of a catalog on this server's disk are no address for anyone else).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from typing import Any, Iterable, Mapping

PROCESSING_EXTENSION = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
DISTRIBUTION = "openeo-backend-federation"
LIBRARIES = ("openeo-processes-dask", "odc-stac", "xarray", "dask", "numpy", "rasterio", "rioxarray", "pystac",
             "netCDF4", "zarr", "openeo")
MAX_INPUTS = 10_000  # a result's metadata lists at most this many input items (and says how many more)


@lru_cache(maxsize=1)
def software_versions() -> dict[str, str]:
    """This backend's and its main libraries' versions (and GDAL's): fixed for the process's life."""
    versions = {}
    for name in (DISTRIBUTION, *LIBRARIES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        import rasterio

        versions["GDAL"] = rasterio.__gdal_version__
    except ImportError:
        pass
    return versions


def input_entries(collection: str, items: Iterable[Any]) -> list[dict]:
    """pystac Items as provenance entries: collection, item id, and the item's href when it is a web URL
    (without its query: a signed URL's signature is a credential, not a name)."""
    entries = []
    for item in items:
        entry = {"collection": collection, "id": item.id}
        href = item.get_self_href()
        if isinstance(href, str) and href.startswith(("https://", "http://")):
            entry["href"] = href.split("?")[0]
        entries.append(entry)
    return entries


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Provenance:
    process: dict  # the openEO process ({"process_graph": ...}) as the user sent it
    inputs: tuple[dict, ...]
    started: datetime
    ended: datetime | None = None

    @classmethod
    def of(cls, process: Mapping, inputs: Iterable[dict], started: datetime) -> "Provenance":
        unique = {(entry["collection"], entry["id"]): entry for entry in inputs}  # a cube loaded twice: once
        return cls({"process_graph": process.get("process_graph")}, tuple(unique.values()), started)

    def finished(self, ended: datetime) -> "Provenance":
        return replace(self, ended=ended)

    def lineage(self) -> str:
        collections = sorted({entry["collection"] for entry in self.inputs})
        text = (f"Computed by an openEO process graph from {len(self.inputs)} input item(s)"
                + (f" of {', '.join(collections)}" if collections else ""))
        return text + f", started {_rfc3339(self.started)}" + (f", finished {_rfc3339(self.ended)}." if self.ended
                                                                 else ".")

    def stac_fields(self) -> dict[str, Any]:
        """Fields of the STAC processing extension (v1.2.0), plus the run's start and its input items."""
        fields: dict[str, Any] = {
            "processing:expression": {"format": "openeo", "expression": self.process},
            "processing:lineage": self.lineage(),
            "processing:software": software_versions(),
            "openeo:started": _rfc3339(self.started),
            "openeo:inputs": list(self.inputs[:MAX_INPUTS]),
        }
        if self.ended is not None:
            fields["processing:datetime"] = _rfc3339(self.ended)
        if len(self.inputs) > MAX_INPUTS:
            fields["openeo:inputs_omitted"] = len(self.inputs) - MAX_INPUTS
        return fields

    def derived_from_links(self) -> list[dict]:
        """STAC ``derived_from`` links to the input items that have a web address."""
        return [{"rel": "derived_from", "href": entry["href"], "type": "application/geo+json",
                 "title": f"{entry['collection']} item {entry['id']}"}
                for entry in self.inputs[:MAX_INPUTS] if "href" in entry]

    def file_metadata(self) -> dict[str, str]:
        """The same as flat strings for file formats (GeoTIFF tags, netCDF global attributes)."""
        fields = {
            "openeo_process_graph": json.dumps(self.process, separators=(",", ":")),
            "openeo_software": json.dumps(software_versions(), separators=(",", ":")),
            "openeo_inputs": json.dumps(list(self.inputs[:MAX_INPUTS]), separators=(",", ":")),
            "openeo_started": _rfc3339(self.started),
            "openeo_lineage": self.lineage(),
        }
        if self.ended is not None:
            fields["openeo_finished"] = _rfc3339(self.ended)
        return fields
