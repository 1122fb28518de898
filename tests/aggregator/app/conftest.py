"""The aggregator's app behind a real HTTP server on 127.0.0.1, in front of fake backends
(tests/support/fake_backends.py) or real ones."""

from __future__ import annotations

import base64
import threading
import time
import uuid

import pytest
import requests
from werkzeug.serving import make_server

from aggregator.app import create_app
from aggregator.settings import AggregatorSettings
from tests.support.fake_backends import FakeBackend

API = "/openeo/1.2"
FAST_HEALTH = {"health_interval": 0.3, "health_recheck": 0.1, "health_timeout": 0.5, "connect_timeout": 0.5,
               "metadata_timeout": 1.0, "fanout_deadline": 1.5}


def wait_until(condition, timeout: float = 15.0, interval: float = 0.05):
    """Poll (the bound only stops a broken test from hanging); returns the condition's last value."""
    end = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(interval)
    return value


class AggregatorServer:
    """The aggregator app in a threaded werkzeug server (the monitor started at app creation)."""

    def __init__(self, settings: AggregatorSettings, **app_options):
        self.app = create_app(settings, **app_options)
        self.parts = self.app.extensions["openeo_aggregator"]
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.root = f"http://127.0.0.1:{self._server.server_port}"
        self.url = self.root + API
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def new_user(self, password: str = "secret-pw", name: str | None = None) -> tuple[str, str]:
        name = name or f"user-{uuid.uuid4().hex[:8]}"
        self.parts.auth.users.add(name, password)
        return name, password

    def login(self, name: str, password: str) -> dict:
        auth = base64.b64encode(f"{name}:{password}".encode()).decode()
        response = requests.get(f"{self.url}/credentials/basic", headers={"Authorization": f"Basic {auth}"},
                                timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def auth_headers(self, name: str, password: str) -> dict[str, str]:
        return {"Authorization": f"Bearer basic//{self.login(name, password)['access_token']}"}

    def stop(self) -> None:
        self._server.shutdown()
        self.parts.stop()


def settings_for(tmp_path, backends: dict[str, str], **extra) -> AggregatorSettings:
    return AggregatorSettings(data_dir=tmp_path, backends=[{"id": b, "url": url} for b, url in backends.items()],
                              **{**FAST_HEALTH, **extra})


@pytest.fixture
def fakes():
    with FakeBackend("b1") as one, FakeBackend("b2") as two:
        yield {"b1": one, "b2": two}


@pytest.fixture
def aggregator(fakes, tmp_path):
    server = AggregatorServer(settings_for(tmp_path, {b: fake.url for b, fake in fakes.items()}))
    yield server
    server.stop()
