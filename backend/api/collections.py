"""Collections: /collections, /collections/{id}, /collections/{id}/queryables."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify

from backend.api.context import api_root, frozen, paging_arguments, services

bp = Blueprint("collections", __name__)


@bp.get("/collections")
def list_collections():
    limit, offset = paging_arguments()
    ttl = services().settings.collection_cache_ttl
    if ttl and limit is None and offset == 0:
        # The full listing changes only when the metadata cache refreshes: serialise it once per TTL.
        return frozen(f"collections {int(time.monotonic() // ttl)}", lambda: _listing(None, 0)).response()
    return jsonify(_listing(limit, offset))


def _listing(limit: int | None, offset: int) -> dict:
    root = api_root()
    everything = services().collections.list(root)
    page = everything[offset:offset + limit] if limit is not None else everything[offset:]
    links = [{"rel": "self", "href": f"{root}/collections", "type": "application/json"},
             {"rel": "root", "href": f"{root}/", "type": "application/json"}]
    if limit is not None and offset + limit < len(everything):
        links.append({"rel": "next", "href": f"{root}/collections?limit={limit}&offset={offset + limit}",
                      "type": "application/json"})
    return {"collections": page, "links": links}


@bp.get("/collections/<collection_id>")
def describe_collection(collection_id: str):
    ttl = services().settings.collection_cache_ttl
    describe = lambda: services().collections.describe(collection_id, api_root())  # noqa: E731
    if not ttl:
        return jsonify(describe())
    # Serialised and gzipped once per TTL period instead of once per request.
    return frozen(f"collection {collection_id} {int(time.monotonic() // ttl)}", describe).response()


@bp.get("/collections/<collection_id>/queryables")
def collection_queryables(collection_id: str):
    response = jsonify(services().collections.queryables(collection_id, api_root()))
    response.mimetype = "application/schema+json"
    return response

