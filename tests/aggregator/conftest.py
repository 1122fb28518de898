"""Fixtures of the aggregator tests: fake backends on 127.0.0.1 (tests/support/fake_backends.py)."""

from __future__ import annotations

import pytest

from aggregator.federation.backends import BackendConfig
from tests.support.fake_backends import FakeBackend, HangingServer, RefusingPort


def config_for(backend_id: str, url: str) -> BackendConfig:
    return BackendConfig(id=backend_id, url=url)


@pytest.fixture
def fake():
    """A well-behaved fake backend (switch ``behaviour`` to make it misbehave)."""
    with FakeBackend("good") as backend:
        yield backend


@pytest.fixture
def refusing():
    with RefusingPort() as port:
        yield port


@pytest.fixture
def hanging():
    with HangingServer() as server:
        yield server
