"""Checks that need a user of the candidate (skipped, with that reason, when no credentials are given):

- ``sync_result``: ``POST /result`` of a tiny graph, ``load_collection`` of the first listed collection
  (a box of ~0.0002° ≈ 20 m, 2 × 2 pixels at 10 m, at the centre of its first extent box; its first band;
  at most the first 31 days of its temporal extent) and ``save_result`` (GTiff when offered, else the
  first output format). The answer must be a non-empty file.
- ``signed_urls``: the first asset of the user's most recent finished batch job must download without
  credentials (the federation's split graphs read results with ``load_stac`` from another backend).
  Skipped when the user has no finished job: nothing is started for the check.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from aggregator.federation.errors import UpstreamError
from aggregator.onboarding.candidate import Candidate, CredentialsNotGiven, explain, http_status
from aggregator.onboarding.checks_metadata import collection_ids, output_formats
from aggregator.onboarding.results import CheckResult, failed, passed, skipped

HALF_BOX_DEGREES = 0.0001
MAX_DAYS = 31
NO_CREDENTIALS = ("no credentials given for the check (a user and password, or an access token, of the "
                  "candidate): {what} needs a user")


def tiny_graph(collection: dict, output_format: str) -> dict:
    """load_collection (a few pixels, a few dates, one band) + save_result, from a collection description."""
    arguments: dict = {"id": collection["id"], "spatial_extent": _tiny_box(collection)}
    interval = _first_interval(collection)
    if interval is not None:
        arguments["temporal_extent"] = interval
    band = _first_band(collection)
    if band is not None:
        arguments["bands"] = [band]
    return {"load": {"process_id": "load_collection", "arguments": arguments},
            "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"},
                                                                "format": output_format}, "result": True}}


def _tiny_box(collection: dict) -> dict:
    boxes = ((collection.get("extent") or {}).get("spatial") or {}).get("bbox") or [[-180, -90, 180, 90]]
    box = boxes[1] if len(boxes) > 1 else boxes[0]  # the first sub-box: where data is, not the union
    west, south, east, north = (box[0], box[1], box[3], box[4]) if len(box) == 6 else box
    x, y = (west + east) / 2, (south + north) / 2
    return {"west": round(x - HALF_BOX_DEGREES, 7), "south": round(y - HALF_BOX_DEGREES, 7),
            "east": round(x + HALF_BOX_DEGREES, 7), "north": round(y + HALF_BOX_DEGREES, 7)}


def _first_interval(collection: dict) -> list[str] | None:
    intervals = ((collection.get("extent") or {}).get("temporal") or {}).get("interval") or []
    if not intervals or not isinstance(intervals[0], list) or len(intervals[0]) != 2:
        return None
    start, end = (_parse(value) for value in intervals[0])
    if start is None and end is None:
        return None
    if start is None:
        start = end - timedelta(days=MAX_DAYS)
    end = min(end, start + timedelta(days=MAX_DAYS)) if end is not None else start + timedelta(days=MAX_DAYS)
    return [_format(start), _format(end)]


def _parse(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_band(collection: dict) -> str | None:
    for dimension in (collection.get("cube:dimensions") or {}).values():
        if isinstance(dimension, dict) and dimension.get("type") == "bands" and dimension.get("values"):
            return str(dimension["values"][0])
    bands = (collection.get("summaries") or {}).get("eo:bands") or []
    if bands and isinstance(bands[0], dict) and isinstance(bands[0].get("name"), str):
        return bands[0]["name"]
    return None


def _pick_format(formats: list[str]) -> str:
    return next((f for f in formats if f.lower() in ("gtiff", "geotiff")), formats[0] if formats else "GTiff")


def sync_result(c: Candidate) -> CheckResult:
    name = "sync_result"
    try:
        headers = c.auth_headers()
    except CredentialsNotGiven:
        return skipped(name, NO_CREDENTIALS.format(what="POST /result"))
    except UpstreamError as error:
        return failed(name, f"logging in with the given credentials failed: {explain(error)}")
    try:
        ids = collection_ids(c)
        if not ids:
            return failed(name, "no collection to load (GET /collections lists none)")
        graph = tiny_graph(c.api_json(f"collections/{ids[0]}"), _pick_format(output_formats(c)))
    except UpstreamError as error:
        return failed(name, f"the collection and formats to build the request from could not be read: "
                            f"{explain(error)}")
    load = graph["load"]["arguments"]
    what = (f"POST /result (load_collection '{load['id']}', 0.0002° box, "
            f"{' to '.join(load.get('temporal_extent', ['all dates']))}, save_result {graph['save']['arguments']['format']})")
    started = time.monotonic()
    try:
        response = c.api.request("POST", "result", json={"process": {"process_graph": graph}}, headers=headers,
                                 timeout=c.options.result_timeout)
    except UpstreamError as error:
        return failed(name, f"{what} {explain(error)}")
    size = len(response.content)
    if not size:
        return failed(name, f"{what} answered HTTP {response.status_code} with an empty body")
    return passed(name, f"{what}: {size} bytes of {response.headers.get('Content-Type', 'unknown type')} "
                        f"in {time.monotonic() - started:.1f} s")


def signed_urls(c: Candidate) -> CheckResult:
    name = "signed_urls"
    try:
        headers = c.auth_headers()
    except CredentialsNotGiven:
        return skipped(name, NO_CREDENTIALS.format(what="reading a finished job's results"))
    except UpstreamError as error:
        return failed(name, f"logging in with the given credentials failed: {explain(error)}")
    try:
        listing = c.api.get_json("jobs", headers=headers, timeout=c.options.timeout)
    except UpstreamError as error:
        return failed(name, f"GET /jobs {explain(error)}")
    finished = [job for job in listing.get("jobs") or [] if isinstance(job, dict) and job.get("status") == "finished"]
    if not finished:
        return skipped(name, "the given user has no finished batch job whose result URLs could be tried: run "
                             "one small job and check again")
    job = max(finished, key=lambda j: str(j.get("updated") or j.get("created") or ""))
    job_id = job.get("id")
    try:
        results = c.api.get_json(f"jobs/{job_id}/results", headers=headers, timeout=c.options.timeout)
    except UpstreamError as error:
        return failed(name, f"GET /jobs/{job_id}/results {explain(error)}")
    assets = [(key, asset["href"]) for key, asset in (results.get("assets") or {}).items()
              if isinstance(asset, dict) and isinstance(asset.get("href"), str)]
    if not assets:
        return failed(name, f"the results of finished job {job_id} list no asset with an href")
    key, href = assets[0]
    if not href.startswith(("http://", "https://")):
        return failed(name, f"asset '{key}' of job {job_id} has no absolute http(s) href: {href[:100]}")
    upstream, path = c.upstream_for(href)
    try:
        with upstream.request("GET", path, stream=True) as response:  # no Authorization header
            status, media_type = response.status_code, response.headers.get("Content-Type", "unknown type")
    except UpstreamError as error:
        status = http_status(error)
        if status in (401, 403):
            return failed(name, f"asset '{key}' of job {job_id} answered HTTP {status} without credentials: "
                                "result URLs must be signed so another backend's load_stac can read them")
        return failed(name, f"asset '{key}' of job {job_id} ({href[:100]}) {explain(error)}")
    return passed(name, f"asset '{key}' of job {job_id} downloads without credentials (HTTP {status}, {media_type})")
