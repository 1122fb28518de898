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

log = logging.getLogger(__name__)


def run_runner(settings, parent_pid: int | None = None) -> None:
    """Build the services, run a JobRunner until SIGTERM/SIGINT (or the parent's exit)."""
    from backend.app import configure_logging
    from backend.jobs.runner import JobRunner
    from backend.services import build_services

    configure_logging(settings.log_level)
    runner = JobRunner(build_services(settings))
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


def start_child_runner(settings) -> multiprocessing.Process:
    process = multiprocessing.get_context("spawn").Process(
        target=run_runner, args=(settings, os.getpid()), name="openeo-job-runner", daemon=False)
    process.start()
    log.info("job runner started (pid %s)", process.pid)
    return process


def stop_child_runner(process: multiprocessing.Process, timeout: float = 30) -> None:
    if process.is_alive():
        process.terminate()
        process.join(timeout)
    if process.is_alive():
        process.kill()
