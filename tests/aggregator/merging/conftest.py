"""Real documents of our own backend (fetched once per session from the shared live server) and
variants of them as other backends of a federation would answer."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import requests

S2 = "SENTINEL2_L2A_DEMO"
DEM = "DEM_DEMO"
AGGREGATOR = "http://aggregator.test/openeo/1.2/"


@dataclass(frozen=True)
class RealDocuments:
    url: str  # the live server's API root (with a trailing slash)
    collections: dict
    s2: dict
    dem: dict
    processes: dict
    file_formats: dict
    udf_runtimes: dict

    def copy(self, name: str) -> dict:
        """A deep copy of one document, to derive a variant from."""
        return copy.deepcopy(getattr(self, name))


@pytest.fixture(scope="session")
def real(live_server) -> RealDocuments:
    def get(path: str) -> dict:
        response = requests.get(f"{live_server.url}/{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    return RealDocuments(live_server.url + "/", get("collections"), get(f"collections/{S2}"), get(f"collections/{DEM}"),
                         get("processes"), get("file_formats"), get("udf_runtimes"))


def process(listing: dict, process_id: str) -> dict:
    return next(p for p in listing["processes"] if p["id"] == process_id)


def without_band(collection: dict, band: str) -> dict:
    """A collection document of a backend that lacks ``band`` (in cube:dimensions, summaries and assets)."""
    collection = copy.deepcopy(collection)
    collection["cube:dimensions"]["bands"]["values"].remove(band)
    collection["summaries"]["eo:bands"] = [b for b in collection["summaries"]["eo:bands"] if b["name"] != band]
    collection.get("item_assets", {}).pop(band, None)
    return collection


def rehosted(document: dict, old_root: str, new_root: str) -> dict:
    """The document as another backend at ``new_root`` would serve it (its links point there)."""
    import json

    return json.loads(json.dumps(document).replace(old_root.rstrip("/"), new_root.rstrip("/")))
