"""The part-job runner against a real HTTP server on 127.0.0.1 whose jobs never finish (or fail at once):
the deadline ends the wait with an openEO error naming the part and the backend, and every part job is
deleted, also those of parts that were fine."""

from __future__ import annotations

import json
import threading
import time

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from aggregator.federation.backends import BackendConfig
from aggregator.federation.upstream import Upstream
from aggregator.split import PartGraph, SplitPartFailed, SplitPartTimeout
from aggregator.split.parts import PartRunner


class JobsBackend:
    """Jobs that stay ``running`` (``status``), or a refused submission (``refuse``); records every call."""

    def __init__(self, status: str = "running", refuse: bool = False):
        self.status, self.refuse = status, refuse
        self.calls: list[tuple[str, str]] = []
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/openeo/1.2/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @Request.application
    def app(self, request: Request) -> Response:
        path = request.path.removeprefix("/openeo/1.2/")
        self.calls.append((request.method, path))
        if request.method == "POST" and path == "jobs":
            if self.refuse:
                return _json({"id": "r", "code": "CollectionNotFound", "message": "No such collection X.", "links": []},
                             404)
            return Response(status=201, headers={"OpenEO-Identifier": "job7", "Location": f"{self.url}jobs/job7"})
        if request.method == "POST" and path == "jobs/job7/results":
            return Response(status=202)
        if request.method == "GET" and path == "jobs/job7":
            return _json({"id": "job7", "status": self.status, "progress": 10, "created": "2026-01-01T00:00:00Z"})
        if request.method == "GET" and path == "jobs/job7/results":
            return _json({"id": "e", "code": "ProcessParameterInvalid", "message": "band 'HH' does not exist",
                          "level": "error", "links": []}, 424)
        if request.method == "DELETE":
            return Response(status=204)
        return _json({"id": "x", "code": "NotFound", "message": "no", "links": []}, 404)

    def close(self) -> None:
        self._server.shutdown()


def _json(document: dict, status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, content_type="application/json")


@pytest.fixture
def backends():
    made: dict[str, JobsBackend] = {}

    def make(backend_id: str, **behaviour) -> JobsBackend:
        made[backend_id] = JobsBackend(**behaviour)
        return made[backend_id]

    yield make
    for backend in made.values():
        backend.close()


def runner_for(made: dict[str, JobsBackend]) -> PartRunner:
    upstreams = {b: Upstream(BackendConfig(id=b, url=server.url)) for b, server in made.items()}
    return PartRunner(upstreams, jobs_timeout=10)


def part(node: str, backend_id: str) -> PartGraph:
    return PartGraph(node, "S1", backend_id, {"load": {"process_id": "load_collection", "arguments": {"id": "S1"}},
                                              "save": {"process_id": "save_result", "result": True, "arguments": {
                                                  "data": {"from_node": "load"}, "format": "GTiff"}}})


def test_a_part_not_done_by_the_deadline_is_a_504_naming_it_and_every_part_job_is_deleted(backends):
    slow, other = backends("B", status="running"), backends("C", status="running")
    runner = runner_for({"B": slow, "C": other})
    started = time.monotonic()
    with pytest.raises(SplitPartTimeout) as raised:
        runner.run_all([part("s1", "B"), part("s1b", "C")], lambda b: {}, deadline=time.monotonic() + 1.5,
                       title="t")
    assert time.monotonic() - started < 15  # the deadline ended the wait, not a hang
    message = raised.value.message
    assert raised.value.status == 504 and ("backend 'B'" in message or "backend 'C'" in message)
    assert "Part 's1" in message and "did not finish within" in message
    for server in (slow, other):
        assert ("POST", "jobs/job7/results") in server.calls  # started
        assert ("DELETE", "jobs/job7/results") in server.calls and ("DELETE", "jobs/job7") in server.calls


def test_a_failed_part_job_carries_the_backends_error(backends):
    failing = backends("B", status="error")
    with pytest.raises(SplitPartFailed) as raised:
        runner_for({"B": failing}).run_all([part("s1", "B")], lambda b: {}, deadline=time.monotonic() + 30, title="t")
    assert raised.value.status == 424
    assert raised.value.message == ("Part 's1' of the split process graph (load_collection of S1 on backend 'B') "
                                    "failed: its job job7 failed: [ProcessParameterInvalid] band 'HH' does not exist")
    assert ("DELETE", "jobs/job7") in failing.calls


def test_a_refused_submission_keeps_the_backends_status_and_code(backends):
    refusing = backends("B", refuse=True)
    with pytest.raises(SplitPartFailed) as raised:
        runner_for({"B": refusing}).run_all([part("s1", "B")], lambda b: {}, deadline=time.monotonic() + 30, title="t")
    assert raised.value.status == 404 and raised.value.code == "FederationSplitPartFailed"
    assert "[CollectionNotFound] No such collection X." in raised.value.message and "backend 'B'" in raised.value.message
    assert [c for c in refusing.calls if c[0] == "DELETE"] == []  # nothing was created
