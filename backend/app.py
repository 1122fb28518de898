"""The Flask application factory: every part wired in one place."""

from __future__ import annotations

from flask import Flask

from apicore import flask_support
from apicore.flask_support import configure_logging
from apicore.frozen_json import gzip_response
from apicore.views import SHARED_BLUEPRINTS, register_openeo_api
from backend.api import database_unavailable, public_udps, signed_results, web_services
from backend.api_services import build_api_services
from backend.services import Services, build_services
from backend.settings import Settings, load_settings

# Routes of the backend alone, mounted beside the shared ones (apicore/views/).
OWN_BLUEPRINTS = (signed_results.bp, public_udps.bp, web_services.bp)
API_BLUEPRINTS = SHARED_BLUEPRINTS + OWN_BLUEPRINTS


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    settings = settings or (services.settings if services else load_settings())
    configure_logging(settings.log_level)
    app = Flask("openeo_backend")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    parts = app.extensions["openeo_backend"] = services or build_services(settings)
    flask_support.install(app)
    database_unavailable.install(app)  # 503 with Retry-After, not 500, while the database is unreachable
    app.after_request(gzip_response)
    app.url_map.strict_slashes = False  # /openeo/1.2 and /openeo/1.2/ both answer
    register_openeo_api(app, build_api_services(parts), OWN_BLUEPRINTS)
    return app

