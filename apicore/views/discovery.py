"""Capabilities and discovery: /, /conformance, /file_formats, /udf_runtimes; /.well-known/openeo and /health
at the server root."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from apicore.flask_support import registered_endpoints
from apicore.views.context import api, api_root, document_response

bp = Blueprint("discovery", __name__)
well_known_bp = Blueprint("well_known", __name__)
health_bp = Blueprint("health", __name__)

API_VERSION = "1.2.0"
CONFORMANCE = [
    "https://api.openeo.org/1.2.0",
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
]


@bp.get("/")
def capabilities():
    return document_response("capabilities", api().discovery.capabilities_version(), _capabilities)


def _capabilities() -> dict:
    services = api()
    fields = services.discovery.capabilities()
    root = api_root()
    document = {
        "api_version": API_VERSION,
        "backend_version": fields["backend_version"],
        "stac_version": "1.0.0",
        "type": "Catalog",
        "id": fields["id"],
        "title": fields["title"],
        "description": fields["description"],
        "production": True,
        "conformsTo": CONFORMANCE + fields.get("conformsTo", []),
        "endpoints": registered_endpoints(current_app, services.api_prefix),
        "billing": fields["billing"],
        "links": [
            {"rel": "self", "href": f"{root}/", "type": "application/json"},
            {"rel": "root", "href": f"{root}/", "type": "application/json"},
            {"rel": "version-history", "href": f"{root.removesuffix(services.api_prefix)}/.well-known/openeo",
             "type": "application/json"},
            {"rel": "data", "href": f"{root}/collections", "type": "application/json",
             "title": "Collections"},
            {"rel": "conformance", "href": f"{root}/conformance", "type": "application/json"},
        ],
    }
    if "federation" in fields:
        document["federation"] = fields["federation"]
    return document


@well_known_bp.get("/.well-known/openeo")
def well_known():
    return jsonify({"versions": [{"url": f"{api_root()}/", "api_version": API_VERSION, "production": True}]})


@bp.get("/conformance")
def conformance():
    return jsonify({"conformsTo": CONFORMANCE + api().discovery.capabilities().get("conformsTo", [])})


@bp.get("/file_formats")
def list_file_formats():
    processes = api().processes
    return document_response("file_formats", processes.version(), processes.file_formats)


@bp.get("/udf_runtimes")
def udf_runtimes():
    return jsonify(api().processes.udf_runtimes())


@health_bp.get("/health")
def health():
    document = api().discovery.health()
    return jsonify(document), 200 if document.get("status") == "ok" else 503
