"""The Flask application factory: every part wired in one place."""

from __future__ import annotations

import logging

from flask import Flask

from apicore import flask_support
from apicore.frozen_json import gzip_response
from backend.api import (account, collections, discovery, job_results, jobs, process_graphs, processes, processing,
                         validation)
from backend.api.context import API_PREFIX
from backend.services import Services, build_services
from backend.settings import Settings, load_settings

API_BLUEPRINTS = (discovery.bp, account.bp, collections.bp, processes.bp, process_graphs.bp, processing.bp,
                  validation.bp, jobs.bp, job_results.bp)


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    settings = settings or (services.settings if services else load_settings())
    configure_logging(settings.log_level)
    app = Flask("openeo_backend")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["openeo_backend"] = services or build_services(settings)
    flask_support.install(app)
    app.after_request(gzip_response)
    app.url_map.strict_slashes = False  # /openeo/1.2 and /openeo/1.2/ both answer
    blueprints = API_BLUEPRINTS + ((account.oidc_bp,) if settings.oidc_providers else ())
    for blueprint in blueprints:
        app.register_blueprint(blueprint, url_prefix=API_PREFIX)
    app.register_blueprint(discovery.well_known_bp)
    app.register_blueprint(discovery.health_bp)
    # The JS client looks for /.well-known/openeo under the URL it is given (often the API root) first.
    app.register_blueprint(discovery.well_known_bp, url_prefix=API_PREFIX, name="well_known_under_api")
    return app


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_openeo", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._openeo = True  # type: ignore[attr-defined]
    handler.addFilter(flask_support.RequestIdLogFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
