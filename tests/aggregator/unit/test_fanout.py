"""fan_out: the healthy backends' answers by the deadline, every other backend a classified failure."""

from __future__ import annotations

import threading
import time

import pytest

from aggregator.federation.backends import BackendRegistry
from aggregator.federation.errors import BackendResponseInvalid, BackendTimeout, BackendUnavailable
from aggregator.federation.fanout import FanOutPool, fan_out
from aggregator.federation.health import HealthMonitor
from aggregator.federation.upstream import Timeouts, Upstream, Upstreams
from tests.aggregator.conftest import config_for
from tests.support.fake_backends import FakeBackend

SLOW_READ = Timeouts(connect=1.0, metadata=30.0)  # the deadline, not the read timeout, must end the wait


def collections(upstream: Upstream) -> list[str]:
    return [c["id"] for c in upstream.get_json("collections")["collections"]]


@pytest.fixture
def zoo(refusing, hanging):
    """One backend of each kind: healthy ×2, refusing, hanging, invalid JSON, HTML 500."""
    good1, good2, garbage, broken = FakeBackend("g1"), FakeBackend("g2"), FakeBackend("garbage"), FakeBackend("html")
    garbage.behaviour, broken.behaviour = "invalid_json", "html_500"
    urls = {"g1": good1.url, "g2": good2.url, "refused": refusing.url, "hung": hanging.url,
            "garbage": garbage.url, "html": broken.url}
    yield {backend_id: Upstream(config_for(backend_id, url), timeouts=SLOW_READ) for backend_id, url in urls.items()}
    for server in (good1, good2, garbage, broken):
        server.stop()


def test_answers_by_the_deadline_with_every_failure_classified(zoo):
    pool = FanOutPool(max_workers=8)
    started = time.monotonic()
    result = pool.fan_out(zoo.values(), collections, deadline=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5  # the hung backend (30 s read timeout) is not waited for
    assert result.successes == {"g1": ["g1-C1"], "g2": ["g2-C1"]}
    assert result.missing == ["garbage", "html", "hung", "refused"]
    failures = {backend_id: (type(e), e.status, e.code) for backend_id, e in result.failures.items()}
    assert failures == {
        "refused": (BackendUnavailable, 503, "BackendUnavailable"),
        "hung": (BackendTimeout, 504, "BackendTimeout"),
        "garbage": (BackendResponseInvalid, 502, "BackendResponseInvalid"),
        "html": (BackendResponseInvalid, 502, "BackendResponseInvalid"),
    }
    for backend_id, error in result.failures.items():
        assert error.message.startswith(f"Backend '{backend_id}'")
    assert result.failures["hung"].message == "Backend 'hung' did not answer within 1 s. Try again later."
    pool.shutdown()


def test_module_level_fan_out_uses_the_shared_pool(zoo):
    result = fan_out([zoo["g1"], zoo["refused"]], collections, deadline=5)
    assert (list(result.successes), result.missing) == (["g1"], ["refused"])


def test_an_unexpected_exception_in_the_call_makes_that_backend_missing(zoo):
    def broken_merge(upstream: Upstream):
        document = upstream.get_json("collections")
        return document["no-such-key"] if upstream.id == "g2" else document

    result = FanOutPool(max_workers=4).fan_out([zoo["g1"], zoo["g2"]], broken_merge, deadline=5)
    assert list(result.successes) == ["g1"]
    assert isinstance(result.failures["g2"], BackendResponseInvalid)
    assert "could not be used (KeyError)" in result.failures["g2"].message


def test_open_circuit_fails_at_once_without_a_call(fake):
    other = FakeBackend("other")
    registry = BackendRegistry([config_for("good", fake.url), config_for("other", other.url)])
    monitor = HealthMonitor(registry, failure_threshold=2)
    upstreams = Upstreams(registry, timeouts=SLOW_READ, health=monitor)
    fake.behaviour = "html_500"
    pool = FanOutPool(max_workers=4)
    for _ in range(2):  # two real failures open the circuit
        assert pool.fan_out(upstreams.active(), collections, deadline=5).missing == ["good"]
    assert fake.requests["collections"] == 2 and monitor.is_open("good")
    fake.behaviour = "ok"
    result = pool.fan_out(upstreams.active(), collections, deadline=5)
    assert result.missing == ["good"] and list(result.successes) == ["other"]
    assert "skipped until its next successful health check" in result.failures["good"].message
    assert fake.requests["collections"] == 2  # skipped: no request reached it
    other.stop()


def test_missed_deadlines_open_the_circuit_of_a_hung_backend(hanging, fake):
    registry = BackendRegistry([config_for("hung", hanging.url), config_for("good", fake.url)])
    monitor = HealthMonitor(registry, failure_threshold=2)
    upstreams = Upstreams(registry, timeouts=SLOW_READ, health=monitor)
    pool = FanOutPool(max_workers=8)
    for _ in range(2):
        assert pool.fan_out(upstreams.active(), collections, deadline=0.3).missing == ["hung"]
    assert monitor.is_open("hung") and hanging.connections == 2
    started = time.monotonic()
    result = pool.fan_out(upstreams.active(), collections, deadline=5)
    assert time.monotonic() - started < 2  # skipped at once, not waited for
    assert result.missing == ["hung"] and "marked offline" in result.failures["hung"].message
    assert hanging.connections == 2
    pool.shutdown()


def test_a_hung_backend_cannot_take_the_whole_pool(hanging, fake):
    pool = FanOutPool(max_workers=4, max_pending_per_backend=2)
    hung = Upstream(config_for("hung", hanging.url), timeouts=Timeouts(metadata=3.0))
    good = Upstream(config_for("good", fake.url))
    for _ in range(2):
        assert pool.fan_out([hung], collections, deadline=0.2).missing == ["hung"]
    assert pool.pending("hung") == 2
    started = time.monotonic()
    result = pool.fan_out([hung, good], collections, deadline=2)
    assert time.monotonic() - started < 1.5  # refused at once, not waited for
    assert list(result.successes) == ["good"]
    assert "2 earlier calls to it are still pending" in result.failures["hung"].message
    pool.shutdown()


def test_deadline_counts_for_the_whole_fan_out_not_per_backend():
    release = threading.Event()
    missed = []

    class Target:
        def __init__(self, backend_id: str, wait: float):
            self.id, self.wait = backend_id, wait

        def unavailable(self):
            return None

        def record_failure(self, error):
            missed.append((self.id, error.code))

    def call(target: Target) -> str:
        release.wait(target.wait)
        return target.id

    targets = [Target("fast", 0.0), Target("slow1", 10), Target("slow2", 10)]
    started = time.monotonic()
    result = FanOutPool(max_workers=4).fan_out(targets, call, deadline=0.5)
    assert time.monotonic() - started < 2.0
    release.set()
    assert (result.successes, result.missing) == ({"fast": "fast"}, ["slow1", "slow2"])
    assert sorted(missed) == [("slow1", "BackendTimeout"), ("slow2", "BackendTimeout")]  # told to their breakers


def test_a_forked_process_gets_working_threads_and_connections(fake):
    """gunicorn builds the app in its master and forks workers: inherited pools must not be reused."""
    import os

    pool = FanOutPool(max_workers=2)
    good = Upstream(config_for("good", fake.url))
    assert pool.fan_out([good], collections, deadline=5).successes == {"good": ["good-C1"]}  # threads + a connection
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            result = pool.fan_out([good], collections, deadline=5)
            os._exit(0 if result.successes == {"good": ["good-C1"]} else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            break
        time.sleep(0.05)
    else:
        os.kill(child, 9)
        os.waitpid(child, 0)
        raise AssertionError("the forked fan-out hung")
    assert os.waitstatus_to_exitcode(status) == 0
    pool.shutdown()


def test_a_call_still_queued_at_the_deadline_is_not_held_against_its_backend():
    gate = threading.Event()
    blamed = []

    class Target:
        def __init__(self, backend_id: str):
            self.id = backend_id

        def unavailable(self):
            return None

        def record_failure(self, error):
            blamed.append(self.id)

    pool = FanOutPool(max_workers=1)  # "busy" occupies the only thread; "queued" never starts
    result = pool.fan_out([Target("busy"), Target("queued")], lambda target: gate.wait(10), deadline=0.3)
    gate.set()
    assert result.missing == ["busy", "queued"] and blamed == ["busy"]
    pool.shutdown()
