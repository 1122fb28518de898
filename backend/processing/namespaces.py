"""Processes from a URL ``namespace``: a node ``{"process_id": "ndwi", "namespace": "https://…/ndwi"}`` runs
the process description found at that URL (a published UDP of this or another openEO backend, or any
document with a ``process_graph``; a listing ``{"processes": [...]}`` is searched for the id).

This backend's own public URLs (backend/api/public_udps.py) are read from the database; any other URL is
fetched through the fetch policy (backend/processing/fetching: allow-list, public addresses, size and
time limits), never directly.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from apicore import errors

URL_SCHEMES = ("https://", "http://")
PUBLIC_PATH = "public/process_graphs"


def is_url(namespace: Any) -> bool:
    return isinstance(namespace, str) and namespace.startswith(URL_SCHEMES)


def process_at(namespace: str, process_id: str, run_context: Any) -> dict:
    """The process description of ``process_id`` at URL ``namespace``; ProcessUnsupported saying why not."""
    document = _own_public(namespace, process_id, run_context)
    if document is None:
        from backend.processing.fetching import Fetcher, policy_for

        document = Fetcher(policy_for(run_context), process_id, "namespace").fetch_json(namespace)
    spec = _find(document, process_id)
    if spec is None:
        raise errors.ProcessUnsupported(
            f"process '{process_id}' is not at namespace {namespace!r}: the URL must give a process description "
            f"with id '{process_id}' and a process_graph (e.g. the 'canonical' link of a published process).",
            process=process_id, namespace=namespace)
    return spec


def _own_public(namespace: str, process_id: str, run_context: Any) -> dict | None:
    """A published process of this backend, read from its store (None: not one of our public URLs)."""
    root = (getattr(run_context, "api_root", "") or "").rstrip("/")
    services = getattr(run_context, "services", None)
    if not root or services is None:
        return None
    match = re.fullmatch(re.escape(f"{root}/{PUBLIC_PATH}/") + r"([^/?#]+)/([^/?#]+)/?", namespace)
    if match is None:
        return None
    owner_id, named = unquote(match.group(1)), unquote(match.group(2))
    spec = services.udps.get_public(owner_id, named) if named == process_id else None
    if spec and hasattr(run_context, "published_calls"):
        run_context.published_calls.add((owner_id, named))  # its cost hint counts this run's costs
    return spec or {}


def _find(document: Any, process_id: str) -> dict | None:
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("process_graph"), dict) and document.get("id", process_id) == process_id:
        return document
    for entry in document.get("processes") or ():
        if isinstance(entry, dict) and entry.get("id") == process_id and isinstance(entry.get("process_graph"), dict):
            return entry
    return None
