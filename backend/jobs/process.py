"""The job runner as a process: `openeo-backend worker`, or the child process `serve` starts beside gunicorn.

The child is started with the *spawn* method (a fresh interpreter: no threads or sockets inherited from
the server) and stops by itself when its parent is gone, so a killed server leaves no orphan runner.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time

import psutil

log = logging.getLogger(__name__)


def run_runner(settings, parent_pid: int | None = None, migrate: bool = True) -> None:
    """Build the services, run a JobRunner until SIGTERM/SIGINT (or the parent's exit).

    `migrate`: bring the schema up to date first (under the migration lock: `openeo-backend worker`);
    False for the runner `serve` starts, which only checks it (see backend/storage/schema.py)."""
    from backend.app import configure_logging
    from backend.jobs.runner import JobRunner
    from backend.services import build_services
    from backend.storage.schema import SchemaNotCurrent

    configure_logging(settings.log_level)
    try:
        services = build_services(settings, migrate=migrate)
    except SchemaNotCurrent as exc:
        log.error("job runner not started: %s", exc)
        raise SystemExit(3) from None
    runner = JobRunner(services)
    stop = threading.Event()

    def _terminate(signum, _frame):
        log.info("signal %s: stopping the job runner", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    runner.start()
    try:
        while not stop.wait(1.0):
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("parent process %s is gone: stopping the job runner", parent_pid)
                break
    finally:
        runner.stop()


class ChildRunner:
    """The runner `serve` keeps beside its web workers: a child process, restarted when it dies.

    Nothing here starts a thread: under gunicorn the arbiter calls :meth:`start` and then :meth:`check`
    from its own main loop (backend/server.py), because the web workers are forks of the arbiter and a
    process that forks must not have other threads (a lock one of them held would stay locked in the
    child). Only the single-process development server supervises from a thread
    (:meth:`supervise_in_thread`).
    """

    def __init__(self, settings, check_interval: float = 2.0):
        self.settings = settings
        self.check_interval = check_interval
        self.process: multiprocessing.Process | None = None
        # gunicorn's web workers are forks of this process, and one that exits unwinds serve's stack through
        # its `finally: runner.stop()`: only the process that started the runner may check or stop it
        self._owner_pid: int | None = None
        self._started_at = self._next_check = 0.0
        self._restart_delay = check_interval
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def start(self) -> None:
        self._owner_pid = os.getpid()
        # A fork of this process (a web worker) inherits multiprocessing's set of our children, and at its
        # exit multiprocessing would join the runner, which is not its child ("can only join a child process").
        os.register_at_fork(after_in_child=self._forget_runner)
        self._spawn()

    def _forget_runner(self) -> None:
        getattr(multiprocessing.process, "_children", set()).discard(self.process)

    def _spawn(self) -> None:
        # `spawn`: a fresh interpreter (fork + exec), inheriting no threads, locks or sockets of this process.
        # It only checks the schema: serve migrated it before starting the runner.
        self.process = multiprocessing.get_context("spawn").Process(
            target=run_runner, args=(self.settings, os.getpid(), False), name="openeo-job-runner", daemon=False)
        self.process.start()
        self._started_at = time.monotonic()
        log.info("job runner started (pid %s)", self.process.pid)

    def alive(self) -> bool:
        # Not Process.is_alive(): gunicorn's master reaps every child on SIGCHLD, after which
        # multiprocessing can no longer see the exit and would report the runner alive forever.
        if self.process is None:
            return False
        try:
            return psutil.Process(self.process.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def check(self) -> None:
        """Start a new runner if the last one died (at most every check_interval; slower if it keeps dying)."""
        now = time.monotonic()
        if os.getpid() != self._owner_pid or self._stop.is_set() or now < self._next_check:
            return
        self._next_check = now + self.check_interval
        if self.alive():
            return
        # a runner that dies right after its start (e.g. a schema it refuses) is restarted ever more slowly
        lived = now - self._started_at
        self._restart_delay = min(self._restart_delay * 2, 60.0) if lived < 30 else self.check_interval
        log.warning("job runner (pid %s) exited after %.0f s: starting a new one; its jobs are recovered when "
                    "their leases expire", self.process.pid, lived)
        self._next_check = now + self._restart_delay
        self._spawn()

    def supervise_in_thread(self) -> None:
        """For the development server only (it never forks)."""
        def loop():
            while not self._stop.wait(self.check_interval / 2):
                self.check()

        self._watch = threading.Thread(target=loop, name="job-runner-supervisor", daemon=True)
        self._watch.start()

    def stop(self, timeout: float = 30) -> None:
        if os.getpid() != self._owner_pid:
            return  # a forked web worker on its way out: the runner is neither its child nor its to stop
        self._stop.set()
        if self._watch is not None:
            self._watch.join(timeout)
        if self.alive():
            self.process.terminate()
            self.process.join(timeout)
        if self.alive():
            self.process.kill()
