"""Shared fixtures: settings in a temp data dir, the app, and a real HTTP server on localhost."""

from __future__ import annotations

import base64
import threading
import uuid
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from backend.app import create_app
from backend.settings import load_settings

SHARED_ASSETS = Path(__file__).resolve().parents[2] / "shared" / "conformance-assets"
API = "/openeo/1.2"


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory) -> Path:
    """One data dir (with the generated demo catalog) for the session's shared server."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def demo_catalog_dir(session_data_dir) -> Path:
    """The demo catalog of the session's data dir, generated once (the live server then finds it current)."""
    from backend.demo import ensure_demo_catalog

    return ensure_demo_catalog(session_data_dir / "demo-catalog").parent


class LiveServer:
    """A real threaded HTTP server on 127.0.0.1 serving an app, in a background thread."""

    def __init__(self, app):
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.root = f"http://127.0.0.1:{self._server.server_port}"
        self.url = self.root + API
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def services(self):
        return self.app.extensions["openeo_backend"]

    def new_user(self, password: str = "secret-pw") -> tuple[str, str]:
        name = f"user-{uuid.uuid4().hex[:8]}"
        self.services.users.add(name, password)
        return name, password

    def basic_token(self, name: str, password: str) -> str:
        auth = base64.b64encode(f"{name}:{password}".encode()).decode()
        response = requests.get(f"{self.url}/credentials/basic", headers={"Authorization": f"Basic {auth}"})
        response.raise_for_status()
        return response.json()["access_token"]

    def auth_headers(self) -> dict[str, str]:
        """Headers of a fresh basic-auth user."""
        return {"Authorization": f"Bearer basic//{self.basic_token(*self.new_user())}"}

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="session")
def live_server(session_data_dir):
    """The embedded default (SQLite + demo catalog) behind a real HTTP server, shared by the session."""
    settings = load_settings(data_dir=session_data_dir, max_request_bytes=64 * 1024)
    server = LiveServer(create_app(settings))
    yield server
    server.stop()


@pytest.fixture
def api(live_server) -> str:
    return live_server.url


@pytest.fixture(scope="session")
def job_runner(live_server):
    """A job runner on a real Dask LocalCluster (2 worker processes) for the shared server's database."""
    from backend.jobs.runner import JobRunner

    runner = JobRunner(live_server.services).start()
    yield runner
    runner.stop()
