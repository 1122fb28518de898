"""The built wheel is complete: installed into a fresh virtualenv, it serves every process with its spec.

`process_specs/` once lived outside the package: a wheel had none of it, and the registry started
without anomaly, climatological_normal, load_geojson, load_url and apply_neighborhood. This test builds
the wheel from a copy of the sources (so no stale build/ folder of the checkout can fill the gaps),
installs it with its dependencies into a new virtualenv (with the constraints file at the repository
root when there is one), starts `openeo-backend serve` from there and compares GET /processes with the
registry of this checkout. About 1.5 min with a warm pip cache (the install is most of it).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from backend.processing.process_registry import ProcessRegistry
from tests.support.processes import LOCALHOST, file_tail, free_port, http_ok, stop_process, wait_until_ready

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "apicore", "backend", "aggregator")
OUR_PROCESSES = ("anomaly", "climatological_normal", "load_geojson", "load_url", "apply_neighborhood")
INSTALL_TIMEOUT = 900  # a cold pip cache downloads ~1 GB of wheels


def constraints_files() -> list[Path]:
    """The repository's constraints/lock files that pip can read with -c (none yet: then none)."""
    return sorted(REPO.glob("constraints*.txt")) + sorted(REPO.glob("requirements*.lock"))


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{command}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would make the installed backend import this checkout's code or
    read this run's settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("OPENEO_BACKEND_")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    # build with this environment's setuptools when it has one (no download); else pip's isolated build
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", out, source],
        env=clean_env(), timeout=300)
    (built,) = out.glob("openeo_backend_federation-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel and its dependencies; returns its bin directory."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", venv], timeout=120)
    python = venv / "bin" / "python"
    constraints = [arg for path in constraints_files() for arg in ("-c", path)]
    # this environment's pip installs into the new one (--python); --no-compile halves the time
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile", *constraints, wheel],
        env=clean_env(), timeout=INSTALL_TIMEOUT)
    return venv / "bin"


@pytest.mark.slow
def test_the_wheel_serves_every_process_with_its_spec(installed, tmp_path):
    where = run([installed / "python", "-c", "import backend; print(backend.__file__)"],
                env=clean_env(), cwd=tmp_path, timeout=60).stdout.strip()
    assert where.startswith(str(installed.parent)) and "site-packages" in where  # the wheel, not this checkout

    port = free_port()
    log = tmp_path / "serve.log"
    env = clean_env(OPENEO_BACKEND_DEMO_CATALOG="false")
    with log.open("w") as out:
        server = subprocess.Popen(
            [installed / "openeo-backend", "serve", "--host", LOCALHOST, "--port", str(port),
             "--data-dir", tmp_path / "data", "--workers", "1", "--no-job-runner"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        root = f"http://{LOCALHOST}:{port}"
        assert wait_until_ready(server, lambda: http_ok(f"{root}/health", timeout=2), timeout=120, interval=0.5), \
            f"the installed backend did not start (exit {server.returncode}):\n{file_tail(log, 40)}"
        response = requests.get(f"{root}/openeo/1.2/processes", timeout=30)
        assert response.status_code == 200
        served = {spec["id"]: spec for spec in response.json()["processes"]}
    finally:
        stop_process(server, name="openeo-backend serve (wheel)")

    expected = ProcessRegistry()
    assert sorted(served) == expected.ids()
    for pid in OUR_PROCESSES:
        assert served[pid] == expected.spec(pid), pid
    assert served["arccos"]["parameters"][0]["schema"]["maximum"] == 1  # the pinned official copy
    assert served == {pid: expected.spec(pid) for pid in expected.ids()}
