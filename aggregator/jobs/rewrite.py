"""A backend's job documents as the aggregator shows them: federated ids, links into the aggregator.

    job_document(doc, urls)      GET /jobs/{id} (and the entries of GET /jobs)
    results_document(doc, urls)  GET /jobs/{id}/results (a STAC Collection)
    logs_document(doc, urls)     GET /jobs/{id}/logs
    estimate_document(doc, urls) GET /jobs/{id}/estimate

What changes (see ``urls.JobUrls.to_aggregator``): the job's ``id`` becomes its federated id; every
``href`` into the backend's API that needs the user's token (``self``, ``monitor``, unsigned ``result``
or ``item`` links, an unsigned asset) points to the same resource on the aggregator, under the federated
id; the graph in ``process`` gets federated ids back (``graphs.for_user``); a job names its backend in
``federation:backends``. What stays: ``canonical`` links (by definition the token-free URL of the
results), signed hrefs (assets, items, the signed ``root``), links outside the backend, and every other
field, including ones this module does not know. Inputs are not changed; outputs share no mutable parts
with them.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

from aggregator.jobs import graphs, ids
from aggregator.jobs.urls import JobUrls
from aggregator.merging.common import FEDERATION_BACKENDS
from aggregator.merging.links import link_list

KEPT_RELS = frozenset({"canonical"})


def job_document(document: Mapping, urls: JobUrls) -> dict:
    """A job (full, or a listing entry) of ``urls.backend_id``."""
    result = _links_rewritten(document, urls)
    if isinstance(document.get("id"), str) and document["id"]:
        result["id"] = ids.encode(urls.backend_id, document["id"])
    process = result.get("process")
    if isinstance(process, dict) and "process_graph" in process:
        result["process"] = {**process, "process_graph": graphs.for_user(process["process_graph"], urls)}
    result[FEDERATION_BACKENDS] = [urls.backend_id]
    return result


def results_document(document: Mapping, urls: JobUrls, job_id: str | None = None) -> dict:
    """A job's results (STAC Collection, or a batch job's error log entry). ``job_id``: the backend's id of
    the job; the Collection's ``id``, when it is that id, becomes the federated id."""
    result = _links_rewritten(document, urls)
    if job_id is not None and result.get("id") == job_id:
        result["id"] = ids.encode(urls.backend_id, job_id)
    assets = result.get("assets")
    if isinstance(assets, dict):
        result["assets"] = {name: _href_rewritten(asset, urls) for name, asset in assets.items()}
    return result


def logs_document(document: Mapping, urls: JobUrls) -> dict:
    """A page of logs; entries keep their ids (the next page's ``offset``), their links are rewritten."""
    result = _links_rewritten(document, urls)
    if isinstance(result.get("logs"), list):
        result["logs"] = [_links_rewritten(entry, urls) if isinstance(entry, dict) else entry
                          for entry in result["logs"]]
    return result


def logs_next_offset(document: Mapping) -> str | None:
    """The ``offset`` of a logs document's ``next`` link (what the next page is asked for), if any."""
    for link in link_list(document.get("links")):
        if isinstance(link, dict) and link.get("rel") == "next" and isinstance(link.get("href"), str):
            for name, value in parse_qsl(urlsplit(link["href"]).query):
                if name == "offset" and value:
                    return value
    return None


def estimate_document(document: Mapping, urls: JobUrls) -> dict:
    """An estimate: plain figures; any links are rewritten."""
    return _links_rewritten(document, urls)


def _links_rewritten(document: Mapping, urls: JobUrls) -> dict:
    result = copy.deepcopy(dict(document))
    if isinstance(result.get("links"), list):
        result["links"] = [_link(link, urls) for link in result["links"]]
    return result


def _link(link: Any, urls: JobUrls) -> Any:
    if not isinstance(link, dict) or link.get("rel") in KEPT_RELS:
        return link
    return _href_rewritten(link, urls)


def _href_rewritten(item: Any, urls: JobUrls) -> Any:
    if isinstance(item, dict) and isinstance(item.get("href"), str):
        item = {**item, "href": urls.to_aggregator(item["href"])}
    return item
