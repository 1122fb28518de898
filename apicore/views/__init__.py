"""The openEO routes, written once for the backend and the aggregator: Flask blueprints that parse,
authorise and serialise, and talk to the service interfaces of ``apicore/services.py`` found in
``app.extensions["openeo"]``. Nothing here imports an engine or ``backend``."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Flask

from apicore.services import OpenEOServices
from apicore.views import (account, collections, discovery, files, jobs, process_graphs, processes, processing,
                           validation)

SHARED_BLUEPRINTS: tuple[Blueprint, ...] = (discovery.bp, account.bp, collections.bp, processes.bp,
                                             process_graphs.bp, processing.bp, validation.bp, jobs.bp)


def register_openeo_api(app: Flask, services: OpenEOServices,
                        own_blueprints: Iterable[Blueprint] = ()) -> tuple[Blueprint, ...]:
    """Mount the shared views (and an implementation's own ones, e.g. the backend's signed downloads)
    under ``services.api_prefix``, /.well-known/openeo and /health at the server root; returns the
    blueprints mounted under the prefix."""
    app.extensions["openeo"] = services
    blueprints = SHARED_BLUEPRINTS + tuple(own_blueprints)
    if services.account.oidc_providers():
        blueprints += (account.oidc_bp,)
    if services.files is not None:
        app.url_map.converters["filepath"] = files.FilePathConverter
        blueprints += (files.bp,)
    for blueprint in blueprints:
        app.register_blueprint(blueprint, url_prefix=services.api_prefix)
    app.register_blueprint(discovery.well_known_bp)
    app.register_blueprint(discovery.health_bp)
    # The JS client looks for /.well-known/openeo under the URL it is given (often the API root) first.
    app.register_blueprint(discovery.well_known_bp, url_prefix=services.api_prefix, name="well_known_under_api")
    return blueprints
