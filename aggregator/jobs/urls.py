"""URLs of a backend's job resources and where the aggregator shows them.

A backend's documents link into its own API (``<backend root>jobs/<job id>/logs``): a client that
followed such a link would call the backend directly, with a token that means nothing there. These
links are rewritten to the aggregator's root, with the job's federated id in place of the backend's.
Two kinds of backend URL stay as they are: signed ones (a signature or expiry in the query, e.g. our
results' ``?expires=…&signature=…`` or S3 presigned URLs), which need no token and work from anywhere,
and URLs outside the backend's API root.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from aggregator.jobs import ids
from aggregator.merging.links import api_root

#: Query parameters that make a URL work without a token (ours, openeo-python-driver's ``expires``,
#: S3, Google Cloud Storage, Azure SAS).
SIGNATURE_PARAMETERS = frozenset({"signature", "sig", "expires", "x-amz-signature", "x-goog-signature"})


def is_signed(href: str) -> bool:
    return any(name.lower() in SIGNATURE_PARAMETERS for name, _ in parse_qsl(urlsplit(href).query,
                                                                              keep_blank_values=True))


@dataclass(frozen=True)
class JobUrls:
    """One backend's API root and the aggregator's (both normalised to end with one ``/``)."""

    root: str  # the aggregator's versioned API root, as the client called it
    backend_id: str
    backend_root: str

    @classmethod
    def of(cls, root: str, backend_id: str, backend_root: str) -> "JobUrls":
        return cls(api_root(root), backend_id, api_root(backend_root))

    def is_backend_api(self, href: str) -> bool:
        return href.startswith(self.backend_root) or href == self.backend_root.rstrip("/")

    def to_aggregator(self, href: str) -> str:
        """``href`` as the aggregator shows it: a backend API URL mapped onto the aggregator's root (job ids
        in ``jobs/<id>`` paths federated, query kept); signed and foreign URLs unchanged."""
        if not isinstance(href, str) or not self.is_backend_api(href) or is_signed(href):
            return href
        rest = href[len(self.backend_root):] if href.startswith(self.backend_root) else ""
        path, mark, query = rest.partition("?")
        segments = path.split("/")
        if len(segments) >= 2 and segments[0] == "jobs" and segments[1]:
            segments[1] = ids.encode(self.backend_id, unquote(segments[1]))
        return self.root + "/".join(segments) + mark + query

    def job(self, federated_id: str, path: str = "") -> str:
        """The aggregator's URL of a job resource, e.g. ``job(fid, "results")``."""
        return f"{self.root}jobs/{quote(federated_id, safe='')}" + (f"/{path}" if path else "")

    def backend_job(self, job_id: str, path: str = "") -> str:
        """The backend's URL of one of its job resources."""
        return f"{self.backend_root}jobs/{quote(job_id, safe='')}" + (f"/{path}" if path else "")


def aggregator_job_path(href: str, root: str) -> tuple[str, str] | None:
    """``(federated id, rest)`` of an aggregator URL ``<root>jobs/<id>[/rest][?query]``, else None."""
    root = api_root(root)
    if not isinstance(href, str) or not href.startswith(root + "jobs/"):
        return None
    path, mark, query = href[len(root) + len("jobs/"):].partition("?")
    federated_id, _, rest = path.partition("/")
    if not federated_id:
        return None
    return unquote(federated_id), rest + mark + query
