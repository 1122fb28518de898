"""The shared views (apicore/views/) over a second implementation of the service interfaces: an in-memory
stand-in shaped like the aggregator's (federation fields in its documents, opaque job cursors, a proxied
result stream), served by a real HTTP server. The backend's implementation is covered by every other API
test; this pins what the views promise any implementation."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import pytest
import requests
from flask import Flask

from apicore import errors, flask_support
from apicore.services import Download, OpenEOServices, Page
from apicore.views import register_openeo_api
from tests.conftest import LiveServer

API = "/openeo/1.2"
MISSING = {"federation:missing": ["b2"]}


@dataclass
class Caller:
    user_id: str
    name: str


class Account:
    """Discovery and account; one user, 'ann' (token 'ann-token')."""

    def capabilities(self):
        return {"id": "agg", "title": "Aggregator", "description": "Two backends.", "backend_version": "9.9",
                "billing": {"currency": "credits"},
                "conformsTo": ["https://api.openeo.org/extensions/federation/0.2.0"],
                "federation": {"b1": {"url": "http://b1", "status": "online"}}}

    def capabilities_version(self):
        return None

    def health(self):
        return {"status": "degraded", "backends": {"b1": "ok", "b2": "down"}}

    def authenticate(self, authorization):
        if authorization is None:
            return None
        if authorization != "Bearer basic//ann-token":
            raise errors.TokenInvalid()
        return Caller("u-ann", "ann")

    def basic_login(self, name, password):
        return {"access_token": f"{name}-token", "expires_in": 60}

    def oidc_providers(self):
        return []

    def me(self, caller, root):
        return {"user_id": caller.user_id, "name": caller.name, "budget": 5}


class Collections:
    def version(self):
        return 1

    def listing(self, root):
        return {"collections": [{"id": "A", "federation:backends": ["b1"]}, {"id": "B"}], **MISSING}


class Processes:
    def version(self):
        return None

    def listing(self, root):
        return {"processes": [{"id": "p", "federation:backends": ["b1", "b2"]}], **MISSING}

    def file_formats(self):
        return {"input": {}, "output": {"GTiff": {"federation:backends": ["b1"]}}, **MISSING}


class Udps:
    def listing(self, caller, root):
        return {"processes": [{"id": "u", "process_graph": {}, "summary": "s", "federation:backends": ["b1"]}],
                **MISSING}


class Processing:
    def __init__(self):
        self.closed: list[str] = []

    def result(self, caller, body, root):
        def upstream():
            yield b"chunk-1,"
            yield b"chunk-2"
        return Download(media_type="image/tiff", chunks=upstream(), filename="result.tif", size=15,
                        headers={"OpenEO-Costs": "3", "Link": '<http://b1/x>; rel="canonical"'},
                        cleanup=lambda: self.closed.append("result"))

    def validate(self, caller, body, root):
        return {"errors": [], "federation:backends": ["b1"]}


class Jobs:
    """Pages by an opaque cursor (base64 of a position), refuses plain offsets."""

    def __init__(self):
        self.jobs = [{"id": f"b1-j{i}", "title": f"job {i}", "status": "created", "process": {"process_graph": {}},
                      "federation:backends": ["b1"]} for i in range(5)]

    def listing(self, caller, root, limit, page=None, offset=0):
        if offset:
            raise errors.BadRequest(reason="'offset' is not supported: follow the 'next' link")
        start = json.loads(base64.urlsafe_b64decode(page))["at"] if page else 0
        end = start + (limit or len(self.jobs))
        cursor = base64.urlsafe_b64encode(json.dumps({"at": end}).encode()).decode() if end < len(self.jobs) else None
        return Page({"jobs": self.jobs[start:end], **MISSING}, cursor)

    def describe(self, caller, job_id, root):
        return next(job for job in self.jobs if job["id"] == job_id)

    def create(self, caller, fields, root):
        self.created = fields
        return "b1-new", {"OpenEO-Federation-Backend": "b1"}

    def update(self, caller, job_id, changes, root):
        self.updated = (job_id, changes, root)

    def logs(self, caller, job_id, root, offset, level, limit):
        """Entries 'b1:0' ... 'b1:4'; the offset is the id of the last one seen, whatever its shape."""
        entries = [{"id": f"b1:{i}", "level": "info", "message": f"entry {i}"} for i in range(5)]
        start = 0 if offset is None else [e["id"] for e in entries].index(offset) + 1
        page = entries[start:start + limit] if limit else entries[start:]
        more = start + len(page) < len(entries)
        return Page({"level": level, "logs": page, **MISSING}, page[-1]["id"] if more else None)


@pytest.fixture(scope="module")
def services():
    account = Account()
    return OpenEOServices(discovery=account, account=account, collections=Collections(), processes=Processes(),
                          udps=Udps(), processing=Processing(), jobs=Jobs(), api_prefix=API)


@pytest.fixture(scope="module")
def served(services):
    app = Flask("stand_in")
    flask_support.install(app)
    register_openeo_api(app, services)
    server = LiveServer(app)
    yield server
    server.stop()


AUTH = {"Authorization": "Bearer basic//ann-token"}


def test_capabilities_carry_the_federation_and_extra_conformance(served):
    caps = requests.get(f"{served.url}/").json()
    assert (caps["id"], caps["backend_version"], caps["federation"]) == (
        "agg", "9.9", {"b1": {"url": "http://b1", "status": "online"}})
    assert caps["conformsTo"][-1] == "https://api.openeo.org/extensions/federation/0.2.0"
    assert requests.get(f"{served.url}/conformance").json()["conformsTo"] == caps["conformsTo"]
    assert {"path": "/jobs", "methods": ["GET", "POST"]} in caps["endpoints"]
    assert not any(e["path"].startswith("/jobs/{job_id}/results/") for e in caps["endpoints"])  # backend-only


def test_health_is_503_unless_ok(served):
    response = requests.get(f"{served.root}/health")
    assert response.status_code == 503 and response.json()["backends"] == {"b1": "ok", "b2": "down"}


def test_federation_fields_pass_through_listings(served):
    collections = requests.get(f"{served.url}/collections").json()
    assert collections["federation:missing"] == ["b2"]
    assert collections["collections"][0] == {"id": "A", "federation:backends": ["b1"]}
    page = requests.get(f"{served.url}/collections?limit=1").json()
    assert page["federation:missing"] == ["b2"] and [c["id"] for c in page["collections"]] == ["A"]
    processes = requests.get(f"{served.url}/processes").json()
    assert processes["federation:missing"] == ["b2"]
    assert processes["processes"][0]["federation:backends"] == ["b1", "b2"]
    formats = requests.get(f"{served.url}/file_formats").json()
    assert formats["federation:missing"] == ["b2"] and formats["output"]["GTiff"] == {"federation:backends": ["b1"]}
    udps = requests.get(f"{served.url}/process_graphs", headers=AUTH).json()
    assert udps["federation:missing"] == ["b2"]
    assert udps["processes"] == [{"id": "u", "summary": "s", "federation:backends": ["b1"]}]  # no process_graph
    assert requests.post(f"{served.url}/validation", json={"process_graph": {}}).json()["federation:backends"] == ["b1"]


def test_job_listing_follows_opaque_cursors(served, services):
    first = requests.get(f"{served.url}/jobs?limit=2", headers=AUTH).json()
    assert first["federation:missing"] == ["b2"]
    assert first["jobs"][0] == {"id": "b1-j0", "title": "job 0", "status": "created", "federation:backends": ["b1"]}
    seen, body = [], first
    while True:
        seen += [job["id"] for job in body["jobs"]]
        links = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not links:
            break
        assert "page=" in links[0] and "offset=" not in links[0]
        body = requests.get(links[0], headers=AUTH).json()
    assert seen == [job["id"] for job in services.jobs.jobs]
    refused = requests.get(f"{served.url}/jobs?offset=2", headers=AUTH)
    assert refused.status_code == 400 and "follow the 'next' link" in refused.json()["message"]
    assert requests.get(f"{served.url}/jobs/b1-j3", headers=AUTH).json()["process"] == {"process_graph": {}}


def test_result_streams_with_the_services_headers_and_cleans_up(served, services):
    response = requests.post(f"{served.url}/result", json={"process": {"process_graph": {}}}, headers=AUTH)
    assert response.status_code == 200 and response.content == b"chunk-1,chunk-2"
    assert response.headers["Content-Type"] == "image/tiff"
    assert response.headers["Content-Length"] == "15"
    assert response.headers["OpenEO-Costs"] == "3" and response.headers["Link"] == '<http://b1/x>; rel="canonical"'
    assert response.headers["Content-Disposition"] == "inline; filename=result.tif"
    deadline = time.monotonic() + 10  # the server closes the body after sending it, maybe after we read it
    while not services.processing.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert services.processing.closed == ["result"]


def test_errors_of_the_services_are_openeo_errors(served):
    response = requests.get(f"{served.url}/me", headers={"Authorization": "Bearer basic//wrong"})
    assert (response.status_code, response.json()["code"]) == (401, "TokenInvalid")
    assert requests.get(f"{served.url}/me", headers=AUTH).json() == {"user_id": "u-ann", "name": "ann", "budget": 5}


def test_create_passes_options_on_and_answers_the_services_headers(served, services):
    body = {"process": {"process_graph": {}}, "title": "t", "job_options": {"federation:force-backend": "b1"},
            "federation:force-backend": "b1", "unknown": 1}
    response = requests.post(f"{served.url}/jobs", json=body, headers=AUTH)
    assert response.status_code == 201
    assert (response.headers["OpenEO-Identifier"], response.headers["OpenEO-Federation-Backend"]) == ("b1-new", "b1")
    assert response.headers["Location"] == f"{served.url}/jobs/b1-new"
    assert services.jobs.created == {"process": {"process_graph": {}}, "title": "t",
                                     "job_options": {"federation:force-backend": "b1"}, "federation:force-backend": "b1"}
    refused = requests.post(f"{served.url}/jobs", json={**body, "job_options": [1]}, headers=AUTH)
    assert (refused.status_code, refused.json()["code"]) == (400, "BadRequest")
    assert requests.patch(f"{served.url}/jobs/b1-j1", json={"title": "u"}, headers=AUTH).status_code == 204
    assert services.jobs.updated == ("b1-j1", {"title": "u"}, served.url)


def test_log_offsets_are_opaque_strings(served):
    seen, url = [], f"{served.url}/jobs/b1-j1/logs?limit=2"
    while url:
        page = requests.get(url, headers=AUTH).json()
        assert page["federation:missing"] == ["b2"]
        seen += [entry["id"] for entry in page["logs"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        assert url is None or "offset=b1%3A" in url
    assert seen == [f"b1:{i}" for i in range(5)]
    too_long = requests.get(f"{served.url}/jobs/b1-j1/logs?offset={'x' * 1001}", headers=AUTH)
    assert (too_long.status_code, too_long.json()["code"]) == (400, "BadRequest")
