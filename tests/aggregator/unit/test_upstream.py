"""Upstream: pooled calls with per-call headers, and every failure classified as an openEO error."""

from __future__ import annotations

import threading

import pytest

from aggregator.federation.errors import (BackendErrorResponse, BackendResponseInvalid, BackendTimeout,
                                          BackendUnavailable, UpstreamError)
from aggregator.federation.upstream import Timeouts, Upstream
from tests.aggregator.conftest import config_for
from tests.support.fake_backends import DroppingServer, FakeBackend, TricklingServer

FAST = Timeouts(connect=1.0, metadata=0.5, jobs=0.5, result=0.5)


def upstream(backend_id: str, url: str, **kwargs) -> Upstream:
    return Upstream(config_for(backend_id, url), timeouts=FAST, **kwargs)


def test_get_json_returns_the_document(fake):
    document = upstream("b1", fake.url).get_json("collections")
    assert document["collections"][0]["id"] == "good-C1"
    assert fake.requests["collections"] == 1


def test_connections_are_kept_alive_and_reused(fake):
    client = upstream("b1", fake.url)
    ports = {client.get_json("echo")["client_port"] for _ in range(5)}
    assert len(ports) == 1


def test_headers_are_per_call_and_never_stick_to_the_session(fake):
    client = upstream("b1", fake.url)
    results: dict[str, str | None] = {}

    def call(user: str) -> None:
        for _ in range(5):
            echoed = client.get_json("echo", headers={"Authorization": f"Bearer basic//{user}"})
            assert echoed["headers"]["Authorization"] == f"Bearer basic//{user}"
        results[user] = client.get_json("echo")["headers"].get("Authorization")

    threads = [threading.Thread(target=call, args=(f"user{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {f"user{i}": None for i in range(4)}  # an anonymous call carries nobody's token


def test_cookies_set_by_a_backend_are_not_sent_again(fake):
    client = upstream("b1", fake.url)
    client.get_json("cookie")
    assert client.get_json("echo")["cookies"] == {}


def test_refused_connection_is_503_naming_the_backend(refusing):
    with pytest.raises(BackendUnavailable) as caught:
        upstream("dead", refusing.url).get_json("collections")
    error = caught.value
    assert (error.status, error.code, error.backend_id) == (503, "BackendUnavailable", "dead")
    assert error.message.startswith("Backend 'dead' is not reachable (GET /collections: connection refused)")
    assert error.to_dict("r1") == {"id": "r1", "code": "BackendUnavailable", "message": error.message, "links": []}


def test_unknown_host_is_503():
    with pytest.raises(BackendUnavailable, match="Backend 'nowhere'"):
        upstream("nowhere", "http://no-such-host.invalid/openeo/1.2/").get_json("collections")


def test_no_answer_is_504_after_the_read_timeout(hanging):
    with pytest.raises(BackendTimeout) as caught:
        upstream("stuck", hanging.url).get_json("collections")
    assert (caught.value.status, caught.value.code) == (504, "BackendTimeout")
    assert caught.value.message == "Backend 'stuck' did not answer within 0.5 s. Try again later."
    assert hanging.connections == 1  # a timed-out GET is not retried


def test_a_trickling_body_is_cut_off_after_the_read_timeout():
    with TricklingServer(every=0.1) as server:
        with pytest.raises(BackendTimeout, match="did not send its whole answer within 0.5 s"):
            upstream("slow", server.url).get_json("collections")


def test_invalid_json_is_502(fake):
    fake.behaviour = "invalid_json"
    with pytest.raises(BackendResponseInvalid) as caught:
        upstream("garbage", fake.url).get_json("collections")
    assert (caught.value.status, caught.value.code) == (502, "BackendResponseInvalid")
    assert "Backend 'garbage' sent an invalid response (GET /collections: not JSON" in caught.value.message


def test_a_json_array_where_an_object_belongs_is_502(fake):
    fake.documents["collections"] = [1, 2]
    with pytest.raises(BackendResponseInvalid, match="expected a JSON object, got list"):
        upstream("b1", fake.url).get_json("collections")


def test_html_500_is_502_with_the_status(fake):
    fake.behaviour = "html_500"
    with pytest.raises(BackendResponseInvalid) as caught:
        upstream("b1", fake.url).get_json("collections")
    assert caught.value.status == 502
    assert "answered HTTP 500 (text/html" in caught.value.message and "without an openEO error" in caught.value.message
    assert caught.value.backend_down


def test_openeo_error_keeps_status_code_and_links_with_the_backend_named(fake):
    with pytest.raises(BackendErrorResponse) as caught:
        upstream("b1", fake.url).get_json("jobs/j-42")
    error = caught.value
    assert (error.status, error.code) == (404, "JobNotFound")
    assert error.message == "Backend 'b1': The batch job 'j-42' does not exist."
    assert error.upstream_request_id == "up-2" and not error.backend_down  # a 404 proves it alive
    assert isinstance(error, UpstreamError)


def test_openeo_500_keeps_its_code(fake):
    fake.behaviour = "openeo_error"
    with pytest.raises(BackendErrorResponse) as caught:
        upstream("b1", fake.url).request("POST", "result", json={"process": {}})
    assert (caught.value.status, caught.value.code) == (500, "Internal")
    assert caught.value.message == "Backend 'b1': Something broke upstream."


def test_oversized_body_is_502(fake):
    fake.big_bytes = 3000
    client = upstream("b1", fake.url, max_body_bytes=2000)
    with pytest.raises(BackendResponseInvalid, match="larger than 2000 bytes"):
        client.get_json("big")
    fake.big_bytes = 100
    assert client.get_json("big")["data"] == "x" * 100


def test_dropped_connection_get_is_retried_once():
    with DroppingServer(drops=1, document={"ok": 1}) as server:
        assert upstream("b1", server.url).get_json("collections") == {"ok": 1}
        assert server.connections == 2


def test_dropped_connection_get_fails_after_one_retry():
    with DroppingServer(drops=5) as server:
        with pytest.raises(BackendUnavailable, match="connection closed without an answer"):
            upstream("b1", server.url).get_json("collections")
        assert server.connections == 2


def test_post_is_never_retried():
    with DroppingServer(drops=1) as server:
        with pytest.raises(BackendUnavailable):
            upstream("b1", server.url).request("POST", "jobs", json={"process": {}})
        assert server.connections == 1


def test_streamed_response_and_redirect_policy(fake):
    client = upstream("b1", fake.url)
    with client.request("POST", "echo", json={"a": 1}, stream=True) as response:
        assert response.json()["body"] == '{"a": 1}'
    assert fake.requests["echo"] == 1


def test_restarted_backend_is_reached_on_a_fresh_connection():
    with FakeBackend("flappy") as backend:
        client = upstream("flappy", backend.url)
        assert client.get_json("")["id"] == "flappy"  # leaves a kept-alive connection in the pool
        backend.stop()
        with pytest.raises(BackendUnavailable):
            client.get_json("")
        backend.start()
        assert client.get_json("")["id"] == "flappy"
