"""The backend's own routes of job results, tied to its storage and signing key: the results document at
its signed ``canonical`` URL (``/jobs/{id}/results/collection.json?expires=…&signature=…``), the signed
STAC Items and the signed downloads (documents built in ``backend/jobs/result_stac.py``; GET
/jobs/{id}/results itself is a shared view, apicore/views/jobs.py).

None of them needs a token (browsers, the JS client, the Web Editor, STAC tools and other backends'
load_stac send none): the URL's HMAC signature and expiry are the authorisation.
Files are served only from the run the database published, by asset name (never a client-supplied
path), with HEAD and ``Range`` (werkzeug's conditional responses).

A remote result store (``results_url``) is streamed through here rather than redirected to a presigned
store URL: the bucket stays private, links keep our expiry, error codes and CORS headers, and stores
that clients cannot reach (an internal MinIO endpoint) work the same.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from apicore import errors
from apicore.flask_support import error_response
from apicore.views.context import api_root
from backend.api.context import services
from backend.api_services.job_documents import results_document
from backend.jobs import result_stac
from backend.jobs.result_stac import ResultLinks
from backend.jobs.signing import DOCUMENT
from backend.jobs.storage import ResultStorage

bp = Blueprint("signed_results", __name__)


@bp.get(f"/jobs/<job_id>/results/{DOCUMENT}")
def signed_results(job_id: str):
    """The results document at its signed ``canonical`` URL: no token; its links expire with this one."""
    svc = services()
    expires = svc.result_urls.verify_document(job_id, request.args.get("expires"), request.args.get("signature"))
    job = svc.jobs.by_id(job_id)
    if job is None:
        raise errors.JobNotFound(identifier=job_id)
    if job.status != "finished":
        raise errors.JobNotFinished(f"The job is now '{job.status}' (it was started again since this link was "
                                    "made): its results are available once it is 'finished' again.")
    return jsonify(results_document(job, _links(job_id, expires), signed=True))


def _links(job_id: str, expires: int) -> ResultLinks:
    return ResultLinks(services().result_urls, api_root(), job_id, expires)


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
    expires = svc.result_urls.verify(job_id, name, request.args.get("expires"), request.args.get("signature"),
                                     kind="items")
    published = svc.jobs.published(job_id)
    if published is None or name not in published["assets"]:
        raise errors.FileNotFound(file=name)
    item = result_stac.result_item(job_id, name, published["assets"][name], published["finished"],
                                   _links(job_id, expires), published.get("provenance"))
    return jsonify(item), 200, {"Content-Type": "application/geo+json"}
