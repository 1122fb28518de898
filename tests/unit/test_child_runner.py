"""ChildRunner (the job runner `serve` keeps beside gunicorn) starts and restarts its process without a
thread: gunicorn's arbiter calls it from its main loop and forks web workers, which must not inherit a
process with other threads running."""

from __future__ import annotations

import os
import signal
import threading
import time

from backend.jobs.process import ChildRunner
from backend.settings import load_settings


def test_start_and_restart_run_no_thread(tmp_path):
    settings = load_settings(data_dir=tmp_path, demo_catalog=False)
    threads_before = set(threading.enumerate())
    runner = ChildRunner(settings, check_interval=0)
    try:
        runner.start()
        first = runner.process.pid
        assert runner.alive()
        os.kill(first, signal.SIGKILL)
        runner.process.join(10)
        runner.check()  # what the arbiter's loop does about once a second
        assert runner.process.pid != first and runner.alive()
        assert set(threading.enumerate()) == threads_before
    finally:
        runner.stop(timeout=10)
    assert not runner.alive()


def test_a_forked_child_neither_checks_nor_stops_the_runner(tmp_path):
    runner = ChildRunner(load_settings(data_dir=tmp_path, demo_catalog=False), check_interval=0)
    runner.start()
    try:
        pid = os.fork()
        if pid == 0:  # like a gunicorn web worker unwinding serve's stack on its way out
            runner.check()
            runner.stop(timeout=1)
            os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.2)
        assert runner.alive()
    finally:
        runner.stop(timeout=10)
