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

import psutil

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


class ChildRunner:
    """The runner `serve` keeps beside its web workers: started as a child, restarted if it dies."""

    def __init__(self, settings, check_interval: float = 2.0):
        self.settings = settings
        self.check_interval = check_interval
        self._stop = threading.Event()
        # gunicorn's web workers are forks of this process, and one that exits unwinds serve's stack through
        # its `finally: runner.stop()`: only this process may stop the runner
        self._owner_pid = os.getpid()
        self.process = self._spawn()
        self._watch = threading.Thread(target=self._supervise, name="job-runner-supervisor", daemon=True)
        self._watch.start()

    def _spawn(self) -> multiprocessing.Process:
        process = multiprocessing.get_context("spawn").Process(
            target=run_runner, args=(self.settings, os.getpid()), name="openeo-job-runner", daemon=False)
        process.start()
        log.info("job runner started (pid %s)", process.pid)
        return process

    def alive(self) -> bool:
        # Not Process.is_alive(): gunicorn's master reaps every child on SIGCHLD, after which
        # multiprocessing can no longer see the exit and would report the runner alive forever.
        try:
            return psutil.Process(self.process.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def _supervise(self) -> None:
        while not self._stop.wait(self.check_interval):
            if not self.alive():
                log.warning("job runner (pid %s) exited with %s: starting a new one; its jobs are recovered "
                            "when their leases expire", self.process.pid, self.process.exitcode)
                self.process = self._spawn()

    def stop(self, timeout: float = 30) -> None:
        if os.getpid() != self._owner_pid:
            return  # a forked web worker on its way out: the runner is neither its child nor its to stop
        self._stop.set()
        self._watch.join(timeout)
        if self.alive():
            self.process.terminate()
            self.process.join(timeout)
        if self.alive():
            self.process.kill()
