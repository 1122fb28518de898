"""GET /jobs/{id}/estimate: duration and size from a dry run of the job's loads (item search, no pixels).

Input pixels = the sum over the graph's load_collection nodes of the cube each would load (bands ×
dates × rows × columns, from the item search and the output grid). From them:
- ``size``: input pixels × 4 bytes (float32) — an upper bound for graphs that reduce, select or keep
  the data, which is what the spec asks an estimate to be (not for graphs that upsample);
- ``duration``: a fixed start-up time plus input megapixels × the measured seconds per megapixel of the
  batch benchmark (settings ``job_seconds_per_megapixel``, tests/benchmarks/README.md).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

STARTUP_SECONDS = 2.0
ESTIMATE_VALID = timedelta(hours=1)


def load_nodes(process_graph: dict) -> Iterator[dict]:
    """Arguments of every load_collection node, callbacks included."""
    stack = [process_graph]
    while stack:
        graph = stack.pop()
        for node in graph.values() if isinstance(graph, dict) else ():
            if not isinstance(node, dict):
                continue
            if node.get("process_id") == "load_collection" and isinstance(node.get("arguments"), dict):
                yield node["arguments"]
            for value in (node.get("arguments") or {}).values():
                if isinstance(value, dict) and isinstance(value.get("process_graph"), dict):
                    stack.append(value["process_graph"])


def input_pixels(process: dict, collections: Any, api_root: str) -> int:
    from backend.processing.loading import estimate_load

    total = 0
    for arguments in load_nodes(process.get("process_graph") or {}):
        collection_id = arguments.get("id")
        if not isinstance(collection_id, str):
            continue
        ref = collections.ref(collection_id)
        metadata = collections.describe(collection_id, api_root)
        extent = arguments.get("spatial_extent")
        interval = arguments.get("temporal_extent")
        bands = arguments.get("bands")
        literal = all(not isinstance(v, dict) or "from_parameter" not in v and "from_node" not in v
                      for v in (extent, interval, bands) if v is not None)
        if literal:
            total += estimate_load(ref, metadata, extent, interval, bands)["total_pixels"]
    return total


def estimate(process: dict, collections: Any, api_root: str, seconds_per_megapixel: float) -> dict:
    pixels = input_pixels(process, collections, api_root)
    seconds = STARTUP_SECONDS + pixels / 1e6 * seconds_per_megapixel
    expires = datetime.now(timezone.utc) + ESTIMATE_VALID
    return {
        "duration": iso_duration(seconds),
        "size": pixels * 4,
        "downloads_included": None,
        "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "openeo:input_pixels": pixels,
    }


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration, e.g. PT1H2M3S."""
    whole = int(math.ceil(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + f"{secs}S"
