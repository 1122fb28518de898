"""Job results: the STAC Collection at GET /jobs/{id}/results and the signed asset downloads.

Downloads need no token (browsers, the JS client and the Web Editor send none): the URL's HMAC signature
and expiry are the authorisation. Files are served only from the run the database published, by asset
name (never a client-supplied path), with HEAD and ``Range`` (werkzeug's conditional responses).

A remote result store (``results_url``) is streamed through here rather than redirected to a presigned
store URL: the bucket stays private, links keep our expiry, error codes and CORS headers, and stores
that clients cannot reach (an internal MinIO endpoint) work the same.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from apicore import errors
from apicore.flask_support import error_response
from backend.api.context import api_root, require_user, services
from backend.jobs.assets import EXTENSIONS, collection_extent
from backend.jobs.storage import ResultStorage
from backend.storage.models import Job

bp = Blueprint("job_results", __name__)
TRUE = ("", "true", "1")  # ?partial, ?partial=true (allowEmptyValue)


@bp.get("/jobs/<job_id>/results")
def list_results(job_id: str):
    user = require_user()
    svc = services()
    job = svc.jobs.get(user.user_id, job_id)
    partial = request.args.get("partial", "false").lower() in TRUE
    if job.status == "error" and not partial:
        entry = svc.job_logs.last_error(job_id) or {"id": "0", "level": "error", "message": "The job failed."}
        return jsonify(entry), 424
    if job.status != "finished" and not partial:
        raise errors.JobNotFinished(f"The job is '{job.status}': its results are available once it is "
                                    "'finished'. Start it with POST /jobs/{id}/results and poll GET /jobs/{id}.")
    return jsonify(results_document(job, partial))


@bp.route("/jobs/<job_id>/results/assets/<name>", methods=["GET", "HEAD"])
def download_asset(job_id: str, name: str):
    svc = services()
    svc.result_urls.verify(job_id, name, request.args.get("expires"), request.args.get("signature"))
    published = svc.jobs.published(job_id)
    if published is None or name not in published["assets"]:
        raise errors.FileNotFound(file=name)
    asset, run = published["assets"][name], published["run"]
    try:
        path = svc.results.local_path(job_id, run, name)
        if path is not None:
            response = send_file(path, mimetype=asset.get("type"), download_name=name, conditional=True, max_age=0)
        else:
            response = _stream(svc.results, job_id, run, name, asset)
    except FileNotFoundError:
        raise errors.FileNotFound(file=name) from None
    except RequestedRangeNotSatisfiable as exc:
        error = errors.BadRequest(reason=f"Range {request.headers.get('Range')!r} cannot be served: ask for one "
                                         f"byte range within the file ({exc.length} bytes)")
        error.status = 416
        response = error_response(error)
        if exc.length is not None:
            response.headers["Content-Range"] = f"bytes */{exc.length}"
    response.headers["Accept-Ranges"] = "bytes"
    return response


def _stream(storage: ResultStorage, job_id: str, run: str, name: str, asset: dict) -> Response:
    """A remote file as a streamed response with werkzeug's HEAD, Range (206/416) and ETag handling."""
    size = storage.size(job_id, run, name)
    body = _LazyReader(lambda: storage.open(job_id, run, name))
    response = Response(body, mimetype=asset.get("type") or "application/octet-stream", direct_passthrough=True)
    response.content_length = size
    response.headers.set("Content-Disposition", "inline", filename=name)
    response.cache_control.no_cache = True
    if asset.get("file:checksum"):
        response.set_etag(asset["file:checksum"])  # the run is immutable: its checksum is a strong validator
    return response.make_conditional(request.environ, accept_ranges=True, complete_length=size)


class _LazyReader:
    """A seekable chunk iterator that opens the stored file only when the body is sent (never for HEAD)."""

    CHUNK = 1024 * 1024

    def __init__(self, opener):
        self._opener, self._file = opener, None

    def _opened(self):
        if self._file is None:
            self._file = self._opener()
        return self._file

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int) -> int:
        return self._opened().seek(offset)

    def tell(self) -> int:
        return self._opened().tell()

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        chunk = self._opened().read(self.CHUNK)
        if not chunk:
            raise StopIteration
        return chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@bp.get("/jobs/<job_id>/results/items/<name>")
def result_item(job_id: str, name: str):
    """One STAC Item per result file, signed like the files (clients walk the links without a token)."""
    svc = services()
    svc.result_urls.verify(job_id, name, request.args.get("expires"), request.args.get("signature"), kind="items")
    published = svc.jobs.published(job_id)
    if published is None or name not in published["assets"]:
        raise errors.FileNotFound(file=name)
    root = api_root()
    asset = {"href": svc.result_urls.url(root, job_id, name), **published["assets"][name]}
    extent = collection_extent({name: asset})
    west, south, east, north = extent["spatial"]["bbox"][0]
    start, end = extent["temporal"]["interval"][0]
    properties = ({"datetime": None, "start_datetime": start, "end_datetime": end} if start
                  else {"datetime": published["finished"]})
    item = {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": EXTENSIONS, "id": name,
        "bbox": [west, south, east, north],
        "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                         [west, north], [west, south]]]},
        "properties": properties, "assets": {name: asset},
        "links": [{"rel": "collection", "href": f"{root}/jobs/{job_id}/results", "type": "application/json"}],
    }
    return jsonify(item), 200, {"Content-Type": "application/geo+json"}


def results_document(job: Job, partial: bool) -> dict:
    svc = services()
    root = api_root()
    assets: dict[str, dict] = {}
    published = job.results if job.status == "finished" else None
    for name, asset in (published or {}).get("assets", {}).items():
        assets[name] = {"href": svc.result_urls.url(root, job.job_id, name), **asset}
    expires = datetime.fromtimestamp(svc.result_urls.expires_at(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {
        "stac_version": "1.0.0",
        "stac_extensions": EXTENSIONS,
        "type": "Collection",
        "id": job.job_id,
        "title": job.title or f"Results of batch job {job.job_id}",
        "description": job.description or "Results of an openEO batch job.",
        "license": "proprietary",
        "extent": collection_extent(assets),
        "openeo:status": job.status,
        "expires": expires,
        "assets": assets,
        "links": [
            {"rel": "self", "href": f"{root}/jobs/{job.job_id}/results", "type": "application/json"},
            {"rel": "monitor", "href": f"{root}/jobs/{job.job_id}/logs", "type": "application/json"},
        ] + [{"rel": "item", "type": "application/geo+json", "title": name,
              "href": svc.result_urls.url(root, job.job_id, name, kind="items")} for name in assets],
    }
    if job.usage:
        document["openeo:usage"] = job.usage
    return document
