"""How long the aggregator's uncached merges take: 3 backends x 300 collections, and /processes.

Pure CPU, no server: the documents are generated here. Every backend lists 300 full collection documents
(bands in summaries and cube:dimensions, item assets, extents with two tiles, links, as our backend's
/collections/{id}): 150 shared by all three (one lacks a band, one has a narrower extent and another
title, so the merge has work and conflicts), 150 of its own. /processes: the pinned official process
specs (backend/process_specs/openeo-processes), on three backends, one with a different return schema
and an extra parameter on some processes.

    .venv/bin/python tests/benchmarks/bench_merging.py            # 50 repeats
    .venv/bin/python tests/benchmarks/bench_merging.py -r 200 --light   # listing entries without summaries
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from aggregator.merging.collections import merge_collection, merge_collection_listings  # noqa: E402
from aggregator.merging.processes import merge_processes  # noqa: E402

ROOT = "http://aggregator.test/openeo/1.2/"
BANDS = [("B01", "coastal", 0.443), ("B02", "blue", 0.49), ("B03", "green", 0.56), ("B04", "red", 0.665),
         ("B05", "rededge071", 0.704), ("B06", "rededge075", 0.74), ("B07", "rededge078", 0.783),
         ("B08", "nir", 0.842), ("B8A", "nir08", 0.865), ("B09", "nir09", 0.945), ("B11", "swir16", 1.61),
         ("B12", "swir22", 2.19), ("SCL", None, None)]


def collection(collection_id: str, backend: str, light: bool) -> dict:
    api = f"http://{backend}.test/openeo/1.2/"
    document = {
        "type": "Collection", "id": collection_id, "stac_version": "1.0.0", "title": f"{collection_id} collection",
        "description": "A Sentinel-2-like collection. " * 10, "license": "CC-BY-4.0", "keywords": ["sentinel", "l2a"],
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"],
        "providers": [{"name": "ESA", "roles": ["producer", "licensor"]}, {"name": backend, "roles": ["host"]}],
        "extent": {"spatial": {"bbox": [[-10, 35, 30, 60], [-10, 35, 10, 60], [10, 35, 30, 60]]},
                   "temporal": {"interval": [["2017-03-28T00:00:00Z", None]]}},
        "links": [{"rel": "self", "href": api + f"collections/{collection_id}"}, {"rel": "root", "href": api},
                  {"rel": "parent", "href": api + "collections"},
                  {"rel": "license", "href": "https://sentinel.esa.int/documents/terms.pdf"}],
    }
    if not light:
        document["cube:dimensions"] = {
            "x": {"type": "spatial", "axis": "x", "extent": [-10, 30], "reference_system": 4326},
            "y": {"type": "spatial", "axis": "y", "extent": [35, 60], "reference_system": 4326},
            "t": {"type": "temporal", "extent": ["2017-03-28T00:00:00Z", None], "step": None},
            "bands": {"type": "bands", "values": [name for name, _, _ in BANDS]}}
        document["summaries"] = {
            "eo:bands": [{"name": name, **({"common_name": common, "center_wavelength": wavelength} if common else {}),
                          "gsd": 10} for name, common, wavelength in BANDS],
            "platform": ["sentinel-2a", "sentinel-2b"], "eo:cloud_cover": {"minimum": 0, "maximum": 100}}
        document["item_assets"] = {name: {"type": "image/tiff", "roles": ["data"], "title": name}
                                   for name, _, _ in BANDS}
    return document


def listings(light: bool, shared: int = 150, own: int = 150) -> dict[str, dict]:
    result = {}
    for backend in ("b1", "b2", "b3"):
        docs = [collection(f"SHARED_{i:03d}", backend, light) for i in range(shared)]
        docs += [collection(f"{backend.upper()}_{i:03d}", backend, light) for i in range(own)]
        for doc in docs[:shared]:
            if backend == "b2" and not light:  # lacks a band
                doc["cube:dimensions"]["bands"]["values"].remove("B01")
                doc["summaries"]["eo:bands"].pop(0)
            if backend == "b3":  # narrower extent, another title
                doc["extent"]["spatial"]["bbox"] = [[0, 40, 20, 55]]
                doc["title"] += " (b3)"
        result[backend] = {"collections": docs, "links": [{"rel": "root", "href": f"http://{backend}.test/"}]}
    return result


def process_listings() -> dict[str, dict]:
    specs = sorted((REPO_ROOT / "backend" / "process_specs" / "openeo-processes").glob("*.json"))
    processes = [json.loads(path.read_text()) for path in specs]
    other = copy.deepcopy(processes)
    for spec in other[::10]:
        spec["returns"]["schema"] = {"type": "object", "subtype": "datacube"}
        spec["parameters"].append({"name": "extra", "description": "x", "schema": {}, "optional": True})
    return {"b1": {"processes": processes, "links": []}, "b2": {"processes": other, "links": []},
            "b3": {"processes": processes[: len(processes) // 2], "links": []}}


def timed(function, repeats: int) -> tuple[float, float, float, float]:
    """Wall-clock median, p95 and max, and the minimum CPU time of this process (the figure least
    disturbed by other load on a shared machine), in milliseconds."""
    function()  # warm-up
    times, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        function()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], times[-1], min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--repeats", type=int, default=50)
    parser.add_argument("--light", action="store_true", help="listing entries without bands and summaries")
    args = parser.parse_args()
    collections = listings(args.light)
    shared = {b: next(c for c in listing["collections"] if c["id"] == "SHARED_000")
              for b, listing in collections.items()}
    processes = process_listings()
    merged = merge_collection_listings(collections, root_url=ROOT)
    cases = [
        (f"GET /collections: 3 x 300 -> {len(merged.document['collections'])} collections, "
         f"{len(merged.conflicts)} conflicts", lambda: merge_collection_listings(collections, root_url=ROOT)),
        ("GET /collections/{id}: one collection of 3 backends", lambda: merge_collection("SHARED_000", shared,
                                                                                           root_url=ROOT)),
        (f"GET /processes: 3 backends, {len(processes['b1']['processes'])} processes",
         lambda: merge_processes(processes, root_url=ROOT)),
    ]
    print(f"| merge ({'light' if args.light else 'full'} documents, {args.repeats} repeats) | median ms | "
          "p95 ms | max ms | CPU min ms |")
    print("|---|---|---|---|---|")
    for title, function in cases:
        median, p95, worst, cpu = timed(function, args.repeats)
        print(f"| {title} | {median:.2f} | {p95:.2f} | {worst:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
