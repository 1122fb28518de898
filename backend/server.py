"""Running the app: gunicorn (production) or Flask's development server."""

from __future__ import annotations

import logging

from gunicorn.arbiter import Arbiter

from backend.app import create_app
from backend.gunicorn_worker import GUNICORN_OPTIONS, EmbeddedGunicorn, no_control_socket, warn_about_threads
from backend.jobs.process import ChildRunner
from backend.processing.warmup import freeze_long_lived_objects, warm_up
from backend.settings import Settings

log = logging.getLogger(__name__)


class _Gunicorn(EmbeddedGunicorn):
    def __init__(self, app, options: dict, runner: ChildRunner | None = None):
        self._runner = runner
        super().__init__(app, options)

    def arbiter(self) -> Arbiter:
        return _RunnerArbiter(self, self._runner)  # also keeps the job runner alive


class _RunnerArbiter(Arbiter):
    """gunicorn's arbiter that starts the job runner once its sockets are bound, before it forks the first
    web worker, and checks on it from its main loop (about once a second), so the arbiter — the process
    every web worker is forked from — never runs a second thread."""

    def __init__(self, app, runner: ChildRunner | None):
        self.job_runner = runner
        super().__init__(app)

    def start(self):
        super().start()
        if self.job_runner is not None:
            self.job_runner.start()

    def manage_workers(self):
        if self.job_runner is not None:
            self.job_runner.check()
        super().manage_workers()


def run_server(settings: Settings, development: bool = False) -> None:
    # Built once before forking: the migration (under its lock), imports and demo generation happen once,
    # in this process, and every web worker inherits the result.
    app = create_app(settings)
    log.info("serving http://%s:%s/openeo/1.2/ (data dir %s)", settings.host, settings.port, settings.data_dir)
    runner = ChildRunner(settings) if settings.job_runner else None
    try:
        _serve(app, settings, development, runner)
    finally:
        if runner is not None:
            runner.stop()


def _serve(app, settings: Settings, development: bool, runner: ChildRunner | None) -> None:
    if development:
        if runner is not None:
            runner.start()
            runner.supervise_in_thread()  # Flask's development server never forks
        app.run(host=settings.host, port=settings.port, threaded=True, use_reloader=False)
        return

    def pre_fork(_server, _worker):
        warn_about_threads()

    def post_fork(_server, _worker):
        # Connections opened before the fork must not be shared between processes.
        app.extensions["openeo_backend"].db.engine.dispose(close=False)

    def post_worker_init(_worker):
        # A request's first-time work (GDAL, PROJ, item cache, first odc-stac load) now, not in the first
        # user's request; bounded, logged, never fatal (backend/processing/warmup.py).
        warm_up(app.extensions["openeo_backend"])
        freeze_long_lived_objects()

    _Gunicorn(app, {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "threads": settings.threads,
        **GUNICORN_OPTIONS,  # gthread worker; its own error answers (URL, headers too long) as openEO JSON
        "timeout": 120,
        "pre_fork": pre_fork,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "accesslog": "-" if settings.access_log else None,
        "loglevel": settings.log_level.lower(),
        **no_control_socket(),
    }, runner).run()
