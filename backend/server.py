"""Running the app: gunicorn (production) or Flask's development server."""

from __future__ import annotations

import logging

from gunicorn.app.base import BaseApplication

from backend.app import create_app
from backend.gunicorn_worker import GUNICORN_OPTIONS
from backend.jobs.process import ChildRunner
from backend.processing.warmup import warm_up
from backend.settings import Settings

log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):
    def __init__(self, app, options: dict):
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app


def run_server(settings: Settings, development: bool = False) -> None:
    app = create_app(settings)  # built once before forking: imports and demo generation happen once
    log.info("serving http://%s:%s/openeo/1.2/ (data dir %s)", settings.host, settings.port, settings.data_dir)
    runner = ChildRunner(settings) if settings.job_runner else None
    try:
        _serve(app, settings, development)
    finally:
        if runner is not None:
            runner.stop()


def _serve(app, settings: Settings, development: bool) -> None:
    if development:
        app.run(host=settings.host, port=settings.port, threaded=True, use_reloader=False)
        return

    def post_fork(_server, _worker):
        # Connections opened before the fork must not be shared between processes.
        app.extensions["openeo_backend"].db.engine.dispose(close=False)

    def post_worker_init(_worker):
        # A request's first-time work (GDAL, PROJ, item cache, first odc-stac load) now, not in the first
        # user's request; bounded, logged, never fatal (backend/processing/warmup.py).
        warm_up(app.extensions["openeo_backend"])

    _Gunicorn(app, {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "threads": settings.threads,
        **GUNICORN_OPTIONS,  # gthread worker; its own error answers (URL, headers too long) as openEO JSON
        "timeout": 120,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "accesslog": "-" if settings.access_log else None,
        "loglevel": settings.log_level.lower(),
    }).run()
