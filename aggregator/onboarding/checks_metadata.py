"""Checks of a candidate's metadata against the openEO API's schemas: collections (the listing and a few
full descriptions), processes, file formats. What the federation merges must be valid openEO."""

from __future__ import annotations

from aggregator.onboarding.candidate import Candidate
from aggregator.onboarding.documents import valid_document
from aggregator.onboarding.results import CheckResult, failed, passed

DESCRIBED_COLLECTIONS = 3  # full descriptions validated (each is one request)
REQUIRED_PROCESSES = ("load_collection", "save_result")  # every graph the federation routes uses them


def collection_ids(c: Candidate) -> list[str]:
    listing = c.api_json("collections")
    collections = listing.get("collections")
    if not isinstance(collections, list):
        return []
    return [entry["id"] for entry in collections if isinstance(entry, dict) and isinstance(entry.get("id"), str)]


def collections(c: Candidate) -> CheckResult:
    name = "collections"
    listing = valid_document(name, lambda: c.api_json("collections"), "/collections")
    if isinstance(listing, CheckResult):
        return listing
    ids = collection_ids(c)
    if not ids:
        return failed(name, "GET /collections lists no collection: a member of the federation offers data")
    for collection_id in ids[:DESCRIBED_COLLECTIONS]:
        document = valid_document(name, lambda: c.api_json(f"collections/{collection_id}"),
                                  f"/collections/{collection_id}", "/collections/{collection_id}",
                                  invalid=f"collection '{collection_id}' is not valid openEO/STAC")
        if isinstance(document, CheckResult):
            return document
        if document.get("id") != collection_id:
            return failed(name, f"GET /collections/{collection_id} describes {document.get('id')!r}")
    described = ", ".join(ids[:DESCRIBED_COLLECTIONS])
    return passed(name, f"{len(ids)} collection(s) listed; listing and descriptions of {described} valid")


def processes(c: Candidate) -> CheckResult:
    name = "processes"
    listing = valid_document(name, lambda: c.api_json("processes"), "/processes")
    if isinstance(listing, CheckResult):
        return listing
    ids = {process["id"] for process in listing["processes"]}
    missing = [process for process in REQUIRED_PROCESSES if process not in ids]
    if missing:
        return failed(name, f"{len(ids)} processes valid, but {', '.join(missing)} missing: every graph the "
                            "federation runs loads collections and saves results")
    return passed(name, f"{len(ids)} process(es) valid, including {', '.join(REQUIRED_PROCESSES)}")


def output_formats(c: Candidate) -> list[str]:
    return list((c.api_json("file_formats").get("output") or {}))


def file_formats(c: Candidate) -> CheckResult:
    name = "file_formats"
    document = valid_document(name, lambda: c.api_json("file_formats"), "/file_formats")
    if isinstance(document, CheckResult):
        return document
    outputs = list(document["output"])
    if not outputs:
        return failed(name, "GET /file_formats offers no output format: save_result needs one")
    return passed(name, f"{len(outputs)} output format(s) ({', '.join(outputs[:6])}), "
                        f"{len(document['input'])} input format(s)")
