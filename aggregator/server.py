"""Running the aggregator: gunicorn with threaded workers (gthread; requests mostly wait on backends), or
Flask's development server.

The app is built once in gunicorn's arbiter (database migrated, settings checked) and inherited by the
web workers it forks. The arbiter starts no thread: each worker starts its own background work (the
health monitor) in ``post_worker_init``, after the fork, and drops the database connections it
inherited in ``post_fork``. The worker class is the backend's (backend/gunicorn_worker.py: gunicorn's
own error answers as openEO JSON), which imports nothing of the engine.
"""

from __future__ import annotations

import logging

from aggregator.app import create_app
from aggregator.settings import AggregatorSettings
from backend.gunicorn_worker import GUNICORN_OPTIONS, EmbeddedGunicorn, no_control_socket, warn_about_threads

log = logging.getLogger(__name__)


def run_server(settings: AggregatorSettings, development: bool = False) -> None:
    app = create_app(settings, start_background=development)
    parts = app.extensions["openeo_aggregator"]
    backends = ", ".join(f"{b.id} ({b.url})" for b in parts.federation.registry.snapshot())
    log.info("federating %s; serving http://%s:%s/openeo/1.2/", backends, settings.host, settings.port)
    if development:
        try:
            app.run(host=settings.host, port=settings.port, threaded=True, use_reloader=False)
        finally:
            parts.stop()
        return

    def post_fork(_server, _worker):
        parts.db.engine.dispose(close=False)  # connections opened before the fork stay the arbiter's

    def post_worker_init(_worker):
        parts.start()  # threads do not survive a fork: each worker probes the backends itself

    EmbeddedGunicorn(app, {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "threads": settings.threads,
        **GUNICORN_OPTIONS,
        "timeout": 120,  # the worker's heartbeat (gthread: its main loop), not a request's duration
        "pre_fork": lambda _server, _worker: warn_about_threads(),
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "accesslog": "-" if settings.access_log else None,
        "loglevel": settings.log_level.lower(),
        **no_control_socket(),
    }).run()
