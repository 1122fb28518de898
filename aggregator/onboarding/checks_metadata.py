"""Checks of a candidate's metadata against the openEO API's schemas: collections (the listing and a few
full descriptions), processes, file formats. What the federation merges must be valid openEO."""

from __future__ import annotations

from aggregator.federation.errors import UpstreamError
from aggregator.onboarding.candidate import Candidate, explain
from aggregator.onboarding.openapi import response_problems
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
    try:
        listing = c.api_json("collections")
    except UpstreamError as error:
        return failed(name, f"GET /collections {explain(error)}")
    problems = response_problems("GET", "/collections", listing)
    if problems:
        return failed(name, f"GET /collections is not valid openEO: {'; '.join(problems)}")
    ids = collection_ids(c)
    if not ids:
        return failed(name, "GET /collections lists no collection: a member of the federation offers data")
    for collection_id in ids[:DESCRIBED_COLLECTIONS]:
        try:
            document = c.api_json(f"collections/{collection_id}")
        except UpstreamError as error:
            return failed(name, f"GET /collections/{collection_id} {explain(error)}")
        problems = response_problems("GET", "/collections/{collection_id}", document)
        if problems:
            return failed(name, f"collection '{collection_id}' is not valid openEO/STAC: {'; '.join(problems)}")
        if document.get("id") != collection_id:
            return failed(name, f"GET /collections/{collection_id} describes {document.get('id')!r}")
    described = ", ".join(ids[:DESCRIBED_COLLECTIONS])
    return passed(name, f"{len(ids)} collection(s) listed; listing and descriptions of {described} valid")


def processes(c: Candidate) -> CheckResult:
    name = "processes"
    try:
        listing = c.api_json("processes")
    except UpstreamError as error:
        return failed(name, f"GET /processes {explain(error)}")
    problems = response_problems("GET", "/processes", listing)
    if problems:
        return failed(name, f"GET /processes is not valid openEO: {'; '.join(problems)}")
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
    try:
        document = c.api_json("file_formats")
    except UpstreamError as error:
        return failed(name, f"GET /file_formats {explain(error)}")
    problems = response_problems("GET", "/file_formats", document)
    if problems:
        return failed(name, f"GET /file_formats is not valid openEO: {'; '.join(problems)}")
    outputs = list(document["output"])
    if not outputs:
        return failed(name, "GET /file_formats offers no output format: save_result needs one")
    return passed(name, f"{len(outputs)} output format(s) ({', '.join(outputs[:6])}), "
                        f"{len(document['input'])} input format(s)")
