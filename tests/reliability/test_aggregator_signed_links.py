"""Signed result links through the aggregator, and the values it signs or checks itself.

The aggregator does not sign result URLs: it passes on the backend's signed ones unchanged
(aggregator/jobs/urls.py, rewrite.py), so downloads go to the backend directly. A job made through the
aggregator runs on A (the session's live server and its job runner); B (DEM only, in-process) is the second
backend. Proven here: the results document the aggregator hands out holds A's signed URLs (never an
aggregator URL without a signature) that serve the file; the backend suite's tampered links
(``test_signed_links.tampered``) built from them, and expired ones, are refused with no byte served, with the
owner's, another user's or no aggregator token; the same paths sent to the aggregator's host serve nothing
(404 openEO error); another user cannot get A's results through the aggregator (describe, results, or a graph
that reads them with load_result by federated id or aggregator URL). The aggregator's own tamper-evident values:
a federated job id with one character changed names no job (404, never another job), and a page token of the
job listing tampered, truncated or of another user is a 400 ``PageTokenInvalid``.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from aggregator.jobs import ids
from aggregator.jobs.urls import is_signed
from aggregator.servers import link_catalog
from backend.app import create_app
from backend.demo import DEMO_DEM_COLLECTION
from backend.settings import load_settings as backend_settings
from tests.aggregator.app.conftest import AggregatorServer, settings_for
from tests.conftest import LiveServer
from tests.reliability.fuzz_targets import AGGREGATOR_TIMEOUTS
from tests.reliability.test_signed_links import JOB, Links, Raw, assert_refused, tampered

pytestmark = pytest.mark.usefixtures("job_runner")
PASSWORD = "links-password"


@pytest.fixture(scope="module")
def federation(live_server, demo_catalog_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("aggregator-links")
    link_catalog(base / "b", demo_catalog_dir)
    b = LiveServer(create_app(backend_settings(data_dir=base / "b", backend_id="B",
                                               demo_collections=[DEMO_DEM_COLLECTION])))
    aggregator = AggregatorServer(settings_for(base / "aggregator", {"A": live_server.url, "B": b.url},
                                               **AGGREGATOR_TIMEOUTS))
    aggregator.backend_b = b
    try:
        yield aggregator
    finally:
        aggregator.stop()
        b.stop()


def federated_user(aggregator, live_server) -> dict[str, str]:
    """A user known to the aggregator and to both backends (the login carries both backends' tokens)."""
    name = f"links-{uuid.uuid4().hex[:8]}"
    for backend in (live_server, aggregator.backend_b):
        backend.services.users.add(name, PASSWORD)
    aggregator.new_user(PASSWORD, name=name)
    return aggregator.auth_headers(name, PASSWORD)


class Through:
    """What test_signed_links.Links needs of a server: its ``url`` (here the aggregator's)."""

    def __init__(self, url: str):
        self.url = url


@pytest.fixture(scope="module")
def parties(federation, live_server):
    a, b = federated_user(federation, live_server), federated_user(federation, live_server)
    created = requests.post(f"{federation.url}/jobs", json=JOB, headers=a, timeout=60)
    assert created.status_code == 201, created.text
    federated_id = created.headers["OpenEO-Identifier"]
    assert created.headers["OpenEO-Federation-Backend"] == "A"
    assert requests.post(f"{federation.url}/jobs/{federated_id}/results", headers=a, timeout=60).status_code == 202
    deadline = time.monotonic() + 180
    while (status := requests.get(f"{federation.url}/jobs/{federated_id}", headers=a,
                                  timeout=60).json()["status"]) not in ("finished", "error"):
        assert time.monotonic() < deadline, f"job still {status}"
        time.sleep(0.2)
    assert status == "finished"
    links = Links(Through(federation.url), a, federated_id)  # the document the aggregator hands out
    links.federated_id, links.job_id = federated_id, ids.decode(federated_id).job_id  # the URLs hold A's id
    return a, b, links


def test_the_aggregator_hands_out_the_backends_signed_urls(live_server, parties):
    a, b, links = parties
    assert set(links.urls) == {"assets", "items", "results"}
    for kind, url in links.urls.items():
        assert url.startswith(live_server.url + "/") and is_signed(url), (kind, url)
        assert links.job_id in url and links.federated_id not in url
    assert links.body[:4] in (b"II*\x00", b"II+\x00")
    for headers in ({}, b, a):  # a capability, as at the backend
        assert requests.get(links.urls["assets"], headers=headers, timeout=60).content == links.body


def test_tampered_links_handed_out_by_the_aggregator_are_refused(live_server, federation, parties):
    a, b, links = parties
    wrong, sent = [], 0
    cases = tampered(links)
    for what, url, status, code in cases:
        also = ((404, "NotFound"),) if "%2f" in url.lower() else ()
        for who, headers in (("no token", {}), ("B", b), ("A", a)):
            sent += 1
            if (why := assert_refused(Raw("GET", url, headers), status, code, links.body, also)) is not None:
                wrong.append(f"{what} ({who}): {why}")
        # the same path at the aggregator's host: it serves no result bytes, signed or not
        at_aggregator = url.replace(live_server.root, federation.root, 1)
        sent += 1
        if (why := assert_refused(Raw("GET", at_aggregator, a), 404, "NotFound", links.body,
                                  ((400, "BadRequest"),))) is not None:
            wrong.append(f"{what} at the aggregator: {why}")
    assert wrong == [], "\n".join(wrong)
    assert len(cases) >= 50
    print(f"\naggregator's signed links: {len(cases)} tampered, {sent} requests, 0 findings")


def test_expired_links_answer_410(live_server, parties):
    a, b, links = parties
    signer = live_server.services.result_urls
    past = time.time() - signer.ttl - 10
    expired = [signer.url(live_server.url, links.job_id, links.name, now=past),
               signer.url(live_server.url, links.job_id, links.name, now=past, kind="items"),
               signer.document_url(live_server.url, links.job_id, now=past)]
    for url in expired:
        for headers in ({}, b, a):
            assert assert_refused(requests.get(url, headers=headers, timeout=60), 410, "ResultLinkExpired",
                                  links.body) is None


def test_another_user_cannot_reach_the_results_through_the_aggregator(federation, parties):
    a, b, links = parties
    job_url = f"{federation.url}/jobs/{links.federated_id}"
    for path in ("", "/results", "/logs", "/estimate"):
        response = requests.get(job_url + path, headers=b, timeout=60)
        assert assert_refused(response, 404, "JobNotFound", links.body) is None, (path, response.text[:300])
    for reference in (links.federated_id, f"{job_url}/results"):
        graph = {"process": {"process_graph": {
            "load": {"process_id": "load_result", "arguments": {"id": reference}},
            "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                     "result": True}}}}
        response = requests.post(f"{federation.url}/result", json=graph, headers=b, timeout=120)
        assert 400 <= response.status_code < 500, (reference, response.status_code, response.text[:300])
        assert assert_refused(response, response.status_code, response.json().get("code"), links.body) is None


def test_tampered_federated_job_ids_name_no_job(federation, parties):
    a, b, links = parties
    fid = links.federated_id
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    changed = [fid[:i] + alphabet[(alphabet.index(c) + 1) % 32] + fid[i + 1:] for i, c in enumerate(fid)
               if i > 3 and c in alphabet]
    changed += [fid[:-1], fid + "a", fid.upper(), "j1-" + "a" * 10_000, ids.encode("A", links.job_id + "x")]
    wrong = []
    for candidate in changed:
        response = requests.get(f"{federation.url}/jobs/{candidate}", headers=a, timeout=60)
        if assert_refused(response, 404, "JobNotFound", links.body) is not None:
            wrong.append(f"{candidate[:60]}: {response.status_code} {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)
    assert len(changed) >= 20


def test_tampered_page_tokens_of_the_job_listing_are_refused(federation, parties):
    a, b, links = parties
    requests.post(f"{federation.url}/jobs", json=JOB, headers=a, timeout=60)  # two jobs: a second page
    first = requests.get(f"{federation.url}/jobs", params={"limit": 1}, headers=a, timeout=60).json()
    token = next(link["href"] for link in first["links"] if link["rel"] == "next").split("page=", 1)[1]
    token = requests.utils.unquote(token.split("&", 1)[0])
    assert requests.get(f"{federation.url}/jobs", params={"limit": 1, "page": token}, headers=a,
                        timeout=60).status_code == 200
    payload, signature = token.rsplit(".", 1)
    # the signature's first character: its last one carries base64 padding bits, whose change decodes the same
    flipped = f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    cases = {"one character changed": flipped, "truncated": token[:-5],
             "payload of another token": "x" + token[1:], "10 kB": "a" * 10_240, "empty signature": token.rsplit(".", 1)[0]}
    for what, page in cases.items():
        response = requests.get(f"{federation.url}/jobs", params={"limit": 1, "page": page}, headers=a, timeout=60)
        assert assert_refused(response, 400, "PageTokenInvalid", links.body) is None, (what, response.text[:300])
        assert "Request the first page again" in response.json()["message"]
    other = requests.get(f"{federation.url}/jobs", params={"limit": 1, "page": token}, headers=b, timeout=60)
    assert assert_refused(other, 400, "PageTokenInvalid", links.body) is None, other.text[:300]
    assert "another user's listing" in other.json()["message"]
