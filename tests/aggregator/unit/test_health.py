"""HealthMonitor: probes, online/offline with timestamps, the circuit breaker, the `federation` object."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from aggregator.federation.backends import BackendConfig, BackendRegistry, federation_details
from aggregator.federation.errors import BackendUnavailable, UpstreamError
from aggregator.federation.health import HealthMonitor
from aggregator.federation.upstream import Upstream
from tests.aggregator.conftest import config_for
from tests.support.fake_backends import FakeBackend


def wait_until(condition, timeout: float = 10.0) -> None:
    """Poll (not a timing assertion: the generous bound only stops a broken test from hanging)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


@pytest.fixture
def flappy():
    with FakeBackend("flappy") as backend:
        yield backend


@pytest.fixture
def pair(flappy, fake):
    registry = BackendRegistry([config_for("flappy", flappy.url), config_for("good", fake.url)])
    return registry, flappy


def test_outage_and_recovery_with_timestamps(pair):
    registry, flappy = pair
    monitor = HealthMonitor(registry, failure_threshold=2, timeout=1.0)
    first = monitor.check("flappy")
    assert (first.status, first.circuit_open, first.consecutive_failures) == ("online", False, 0)
    assert first.last_successful_check == first.last_status_check and first.last_response_time > 0

    flappy.stop()
    suspect = monitor.check("flappy")  # one failure: not yet offline
    assert (suspect.status, suspect.circuit_open, suspect.consecutive_failures) == ("online", False, 1)
    assert suspect.last_status_check > first.last_status_check
    assert suspect.last_successful_check == first.last_successful_check
    assert "Backend 'flappy' is not reachable" in suspect.last_error

    down = monitor.check("flappy")
    assert (down.status, down.circuit_open) == ("offline", True)
    assert down.last_successful_check == first.last_successful_check
    assert monitor.is_open("flappy") and not monitor.is_open("good")

    flappy.start()
    back = monitor.check("flappy")
    assert (back.status, back.circuit_open, back.consecutive_failures, back.last_error) == ("online", False, 0, None)
    assert back.last_successful_check == back.last_status_check > down.last_status_check
    assert [event.ok for event in back.history] == [True, False, False, True]


def test_background_monitor_shows_outage_and_recovery(pair):
    registry, flappy = pair
    monitor = HealthMonitor(registry, interval=0.2, recheck=0.05, timeout=0.5, failure_threshold=2).start()
    try:
        wait_until(lambda: monitor.health("flappy").status == "online" and monitor.health("good").status == "online")
        flappy.stop()
        wait_until(lambda: monitor.health("flappy").status == "offline")
        assert monitor.health("good").status == "online"
        offline_since = monitor.health("flappy").last_status_check
        flappy.start()
        wait_until(lambda: monitor.health("flappy").status == "online")
        assert monitor.health("flappy").last_successful_check > offline_since
    finally:
        monitor.stop()
    assert not monitor.running


def test_real_request_failures_open_the_circuit_and_calls_are_skipped(pair):
    registry, flappy = pair
    monitor = HealthMonitor(registry, failure_threshold=2)
    client = Upstream(registry.get("flappy"), health=monitor)
    flappy.behaviour = "html_500"
    for _ in range(2):
        with pytest.raises(UpstreamError):
            client.get_json("collections")
    assert monitor.health("flappy").status == "offline"
    assert monitor.health("flappy").history[-1].source == "request"
    flappy.behaviour = "ok"
    with pytest.raises(BackendUnavailable, match="marked offline"):
        client.get_json("collections")
    assert flappy.requests["collections"] == 2  # the third call never left
    assert monitor.check("flappy").status == "online"  # the probe bypasses the open circuit
    assert client.get_json("collections")["collections"]
    assert flappy.requests["collections"] == 3


def test_an_answer_that_proves_the_backend_alive_ends_a_failure_streak(pair):
    registry, flappy = pair
    monitor = HealthMonitor(registry, failure_threshold=2)
    client = Upstream(registry.get("flappy"), health=monitor)
    flappy.behaviour = "html_500"
    with pytest.raises(UpstreamError):
        client.get_json("collections")
    flappy.behaviour = "ok"
    with pytest.raises(UpstreamError, match="does not exist"):  # a 404 openEO error: alive
        client.get_json("jobs/unknown")
    flappy.behaviour = "html_500"
    with pytest.raises(UpstreamError):
        client.get_json("collections")
    assert monitor.health("flappy").consecutive_failures == 1 and not monitor.is_open("flappy")


def test_a_hung_backend_fails_its_probe_within_the_probe_timeout(hanging, fake):
    registry = BackendRegistry([config_for("hung", hanging.url), config_for("good", fake.url)])
    monitor = HealthMonitor(registry, timeout=0.3, failure_threshold=1)
    started = time.monotonic()
    health = monitor.check_all()
    assert time.monotonic() - started < 3
    assert (health["hung"].status, health["good"].status) == ("offline", "online")
    assert "did not answer within 0.3 s" in health["hung"].last_error


def test_a_web_server_that_is_not_openeo_fails_the_probe(pair):
    registry, flappy = pair
    flappy.documents[""] = {"hello": "world"}
    monitor = HealthMonitor(registry, failure_threshold=1)
    assert monitor.check("flappy").status == "offline"
    assert "no api_version" in monitor.health("flappy").last_error


def test_history_is_bounded(pair):
    registry, _ = pair
    monitor = HealthMonitor(registry, history_size=3)
    for _ in range(5):
        monitor.check("good")
    assert len(monitor.health("good").history) == 3


def test_a_backend_added_at_runtime_is_probed_without_waiting_an_interval(pair):
    registry, _ = pair
    monitor = HealthMonitor(registry, interval=60).start()
    try:
        wait_until(lambda: monitor.health("good").status == "online")
        with FakeBackend("late") as late:
            registry.add(config_for("late", late.url))
            wait_until(lambda: monitor.health("late").status == "online")
            assert late.requests[""] == 1
    finally:
        monitor.stop()


def test_federation_object(pair):
    registry, flappy = pair
    registry.add(BackendConfig(id="extra", url="http://127.0.0.1:9/openeo/1.2", title="Extra",
                               description="Never seen.", experimental=True, deprecated=True))
    monitor = HealthMonitor(registry, failure_threshold=1, timeout=0.5)
    before = federation_details(registry, monitor)
    assert before["extra"] == {"url": "http://127.0.0.1:9/openeo/1.2/", "title": "Extra",
                               "description": "Never seen.", "last_successful_check": None,
                               "experimental": True, "deprecated": True}
    monitor.check_all()
    details = federation_details(registry, monitor)
    assert list(details) == ["flappy", "good", "extra"]
    good = details["good"]
    assert (good["status"], good["title"], good["experimental"], good["deprecated"]) == ("online", "good", False, False)
    assert good["url"] == registry.get("good").url
    assert good["last_status_check"] == good["last_successful_check"]
    datetime.strptime(good["last_status_check"], "%Y-%m-%dT%H:%M:%SZ")
    extra = details["extra"]
    assert (extra["status"], extra["last_successful_check"]) == ("offline", None)
    datetime.strptime(extra["last_status_check"], "%Y-%m-%dT%H:%M:%SZ")
