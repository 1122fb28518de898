"""`openeo-backend serve` under gunicorn: the schema is migrated once, in the arbiter, before any fork; the
job runner is started by the arbiter after it bound its socket and before it forks the first web worker,
and is supervised from the arbiter's main loop, without a thread (a thread in a process that forks can
hold a lock that stays locked in the child)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest
import requests

from tests.e2e.test_cli import CLI, free_port

pytestmark = pytest.mark.slow


def first_line(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


def runner_children(pid: int) -> set[int]:
    found = set()
    for child in psutil.Process(pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.Error:
            pass
    return found


def test_migration_and_runner_start_happen_in_the_arbiter_before_it_forks(tmp_path):
    port, log_path = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "OPENEO_BACKEND_DEMO_CATALOG": "false", "OPENEO_BACKEND_WORKERS": "2"}
    with open(log_path, "w") as log_file:
        server = subprocess.Popen(CLI + ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
                                  stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline and server.poll() is None, log_path.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        while log_path.read_text().count("Booting worker") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        lines = log_path.read_text().splitlines()
        text = "\n".join(lines)

        assert text.count("Running upgrade  -> 0001") == 1, text  # the runner did not migrate again
        assert first_line(lines, "database schema migrated from empty") < first_line(lines, "Starting gunicorn"), text
        runner_started = first_line(lines, "job runner started")
        assert first_line(lines, "Listening at:") < runner_started < first_line(lines, "Booting worker"), text
        assert "while the arbiter runs other threads" not in text, text

        # supervised from the arbiter's loop: a killed runner is replaced
        (runner,) = runner_children(server.pid)
        os.kill(runner, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not runner_children(server.pid) - {runner}:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert log_path.read_text().count("job runner started") == 2
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
    # web workers are forks of the process that started the runner: on exit they must not try to join it
    assert "Worker exiting" in log_path.read_text() and "can only join a child process" not in log_path.read_text()
