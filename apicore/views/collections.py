"""Collections: /collections, /collections/{id}, /collections/{id}/queryables."""

from __future__ import annotations

from flask import Blueprint, jsonify

from apicore.views.context import api, api_root, document_response, paging_arguments

bp = Blueprint("collections", __name__)


@bp.get("/collections")
def list_collections():
    limit, offset = paging_arguments()
    collections = api().collections
    build = lambda: _page(collections.listing(api_root()), limit, offset)  # noqa: E731
    if limit is None and offset == 0:  # the full listing: serialised once per version
        return document_response("collections", collections.version(), build)
    return jsonify(build())


def _page(listing: dict, limit: int | None, offset: int) -> dict:
    """One page of the full listing; any other fields of it (federation:missing) pass through."""
    root = api_root()
    everything = listing["collections"]
    page = everything[offset:offset + limit] if limit is not None else everything[offset:]
    links = [{"rel": "self", "href": f"{root}/collections", "type": "application/json"},
             {"rel": "root", "href": f"{root}/", "type": "application/json"}]
    if limit is not None and offset + limit < len(everything):
        links.append({"rel": "next", "href": f"{root}/collections?limit={limit}&offset={offset + limit}",
                      "type": "application/json"})
    return {**listing, "collections": page, "links": links}


@bp.get("/collections/<collection_id>")
def describe_collection(collection_id: str):
    collections = api().collections
    # Serialised and gzipped once per version instead of once per request.
    return document_response(("collection", collection_id), collections.version(),
                             lambda: collections.describe(collection_id, api_root()))


@bp.get("/collections/<collection_id>/queryables")
def collection_queryables(collection_id: str):
    response = jsonify(api().collections.queryables(collection_id, api_root()))
    response.mimetype = "application/schema+json"
    return response
