"""The aggregator's Flask application: the shared openEO views (apicore/views) over the federation's
services (aggregator/services) on its parts (aggregator/parts.py).

    app = create_app(settings)                          # dev server, tests: background work started
    app = create_app(settings, start_background=False)  # gunicorn's arbiter: started after the fork

``app.extensions["openeo"]`` holds the services bundle the views use, ``app.extensions["openeo_aggregator"]``
the parts. Fewer than two backends (configured plus registered): ``FederationConfigError``, nothing served.
"""

from __future__ import annotations

from flask import Flask

from aggregator.admin import bp as admin_bp
from aggregator.parts import AggregatorParts, build_parts
from aggregator.services import build_services
from aggregator.settings import AggregatorSettings, load_settings
from apicore import flask_support
from apicore.flask_support import configure_logging
from apicore.frozen_json import gzip_response
from apicore.services import JobsService
from apicore.views import register_openeo_api
from backend.api import database_unavailable


def create_app(settings: AggregatorSettings | None = None, *, parts: AggregatorParts | None = None,
               jobs: JobsService | None = None, start_background: bool = True) -> Flask:
    settings = settings or (parts.settings if parts else load_settings())
    configure_logging(settings.log_level)
    parts = parts or build_parts(settings)
    app = Flask("openeo_aggregator")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["openeo_aggregator"] = parts
    flask_support.install(app)
    database_unavailable.install(app)  # 503 with Retry-After, not 500, while its database is unreachable
    app.after_request(gzip_response)
    app.url_map.strict_slashes = False  # /openeo/1.2 and /openeo/1.2/ both answer
    register_openeo_api(app, build_services(parts, jobs=jobs), own_blueprints=(admin_bp,))  # admin: aggregator/admin
    if start_background:
        parts.start()
    return app
