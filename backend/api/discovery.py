"""Capabilities and discovery: /, /conformance, /file_formats, /udf_runtimes; /.well-known/openeo and /health
at the server root."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from apicore.flask_support import registered_endpoints
from backend import __version__
from backend.api.context import API_PREFIX, api_root, frozen, services
from backend.processing.file_formats import file_formats

bp = Blueprint("discovery", __name__)
well_known_bp = Blueprint("well_known", __name__)
health_bp = Blueprint("health", __name__)

CONFORMANCE = [
    "https://api.openeo.org/1.2.0",
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
]
@bp.get("/")
def capabilities():
    return frozen("capabilities", _capabilities).response()


def _capabilities() -> dict:
    settings = services().settings
    root = api_root()
    return {
        "api_version": "1.2.0",
        "backend_version": __version__,
        "stac_version": "1.0.0",
        "type": "Catalog",
        "id": settings.backend_id,
        "title": settings.title,
        "description": settings.description,
        "production": True,
        "conformsTo": CONFORMANCE,
        "endpoints": registered_endpoints(current_app, API_PREFIX),
        "billing": {"currency": "credits", "default_plan": settings.plans[0].name,
                    "plans": [plan.public() for plan in settings.plans]},
        "links": [
            {"rel": "self", "href": f"{root}/", "type": "application/json"},
            {"rel": "root", "href": f"{root}/", "type": "application/json"},
            {"rel": "version-history", "href": f"{root.removesuffix(API_PREFIX)}/.well-known/openeo",
             "type": "application/json"},
            {"rel": "data", "href": f"{root}/collections", "type": "application/json",
             "title": "Collections"},
            {"rel": "conformance", "href": f"{root}/conformance", "type": "application/json"},
        ],
    }


@well_known_bp.get("/.well-known/openeo")
def well_known():
    root = api_root()
    return jsonify({"versions": [{"url": f"{root}/", "api_version": "1.2.0", "production": True}]})


@bp.get("/conformance")
def conformance():
    return jsonify({"conformsTo": CONFORMANCE})


@bp.get("/file_formats")
def list_file_formats():
    return frozen("file_formats", file_formats).response()


@bp.get("/udf_runtimes")
def udf_runtimes():
    return jsonify({})  # no UDF runtime is offered (run_udf is not listed in /processes)


@health_bp.get("/health")
def health():
    with services().db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return jsonify({"status": "ok", "backend_version": __version__, "database": "ok"})
