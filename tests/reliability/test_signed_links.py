"""Signed result links (backend/api/signed_results.py, backend/jobs/signing.py) under attack.

The three kinds of signed URL a finished job hands out (the results document at its ``canonical`` URL, the
STAC Item of a file, the file itself) are sent tampered (signature, expiry, job id, asset name, another
kind's signature, path traversal in the name, absurd values), expired, and after the job is deleted, each
without a token, with another user's token and with the owner's own token: every answer is an openEO error
(403 ``ResultLinkInvalid``, 410 ``ResultLinkExpired``, 404 for a deleted job) and no byte of the result is
served. A valid link is a capability: it serves the same bytes with or without any token (by design:
browsers, STAC tools and other backends follow it without one).
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
import requests

from backend.demo import DEMO_S2_COLLECTION

pytestmark = pytest.mark.usefixtures("job_runner")

JOB = {"process": {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "bands": ["B04"], "temporal_extent": ["2022-06-01", "2022-06-05"],
        "spatial_extent": {"west": 679720, "east": 680080, "south": 5151560, "north": 5151920, "crs": 32632}}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
             "result": True}}}, "title": "signed links"}


def finished_jobs(live_server, headers: dict, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        created = requests.post(f"{live_server.url}/jobs", json=JOB, headers=headers, timeout=60)
        ids.append(created.headers["OpenEO-Identifier"])
        assert requests.post(f"{live_server.url}/jobs/{ids[-1]}/results", headers=headers, timeout=60).status_code == 202
    deadline = time.monotonic() + 180
    for job_id in ids:
        while (status := requests.get(f"{live_server.url}/jobs/{job_id}", headers=headers,
                                      timeout=60).json()["status"]) not in ("finished", "error"):
            assert time.monotonic() < deadline, f"job {job_id} still {status}"
            time.sleep(0.2)
        assert status == "finished"
    return ids


class Links:
    """A's finished job and its three signed URLs; ``body`` is the file's bytes."""

    def __init__(self, live_server, headers: dict, job_id: str):
        document = requests.get(f"{live_server.url}/jobs/{job_id}/results", headers=headers, timeout=60).json()
        self.job_id = job_id
        self.name, asset = next((name, asset) for name, asset in document["assets"].items()
                                if name.endswith(".tif"))
        self.urls = {"assets": asset["href"],
                     "items": next(link["href"] for link in document["links"] if link["rel"] == "item"),
                     "results": next(link["href"] for link in document["links"] if link["rel"] == "canonical")}
        self.body = requests.get(self.urls["assets"], timeout=60).content


@pytest.fixture(scope="module")
def parties(live_server):
    """A (owner of two finished jobs: one to attack, one to delete), B, and their Authorization headers."""
    a, b = live_server.auth_headers(), live_server.auth_headers()
    kept, deleted = finished_jobs(live_server, a, 2)
    return a, b, Links(live_server, a, kept), Links(live_server, a, deleted)


def split(url: str) -> tuple[str, dict]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", dict(parse_qsl(parts.query))


def rebuilt(base: str, query: dict) -> str:
    return base + "?" + urlencode(query) if query else base


def tampered(links: Links) -> list[tuple[str, str, int, str]]:
    """(what, URL, status, code) of every tampered link, for each of the three kinds."""
    cases = []
    flip = {c: d for c, d in zip("0123456789abcdef", "123456789abcdef0")}
    other_job = uuid.uuid4().hex
    for kind, url in links.urls.items():
        base, query = split(url)
        signature, expires = query["signature"], query["expires"]
        invalid = (403, "ResultLinkInvalid")

        def case(what, new_base=base, expect=invalid, **changes):
            changed = {**query, **changes}
            cases.append((f"{kind}: {what}", rebuilt(new_base, {k: v for k, v in changed.items() if v is not None}),
                          *expect))

        case("one signature character changed", signature=signature[:-1] + flip[signature[-1]])
        case("signature in upper case", signature=signature.upper())
        case("signature left out", signature=None)
        case("empty signature", signature="")
        case("10 kB signature", signature="a" * 10_240)
        case("signature with a NUL", signature=signature + "\x00", expect=(400, "BadRequest"))  # no URL holds one
        case("expiry one second later", expires=str(int(expires) + 1))
        case("expiry left out", expires=None)
        case("expiry not a number", expires="tomorrow")
        case("expiry 10^30", expires="1" + "0" * 30)
        case("expiry negative", expires="-1")
        case("expiry as a float", expires=expires + ".0")
        case("another job's id", new_base=base.replace(links.job_id, other_job))
        for other_kind in {"assets", "items"} - {kind}:
            if kind != "results":  # another kind's signature of the same file
                cases.append((f"{kind}: the {other_kind} signature", rebuilt(
                    base.replace(f"/results/{kind}/", f"/results/{other_kind}/"), query), *invalid))
        if kind != "results":
            for name in ("quicklook.png", "..%2F..%2Fsecret.key", "%2e%2e%2f%2e%2e%2fbackend.db", "..",
                         quote(links.name + "\x00.png", safe=""), "a" * 10_240):
                case(f"asset name {name[:30]!r}", new_base=base.replace(quote(links.name, safe=""), name),
                     expect=(400, "BadRequest") if "%00" in name else invalid)
    return cases


class Raw:
    """An answer to a request sent byte for byte (http.client: ``..`` is not normalised away as requests does)."""

    def __init__(self, method: str, url: str, headers: dict):
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            connection.request(method, parts.path + ("?" + parts.query if parts.query else ""), headers=headers)
            response = connection.getresponse()
            self.status_code, self.content = response.status, response.read()
        finally:
            connection.close()

    def json(self):
        return json.loads(self.content)


def assert_refused(response, status: int, code: str, served: bytes, also: tuple = ()) -> str | None:
    """None if the answer is the expected openEO error (or one of ``also``) and holds none of the file's bytes;
    else why not."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} not JSON: {response.content[:120]!r}"
    got = (response.status_code, body.get("code"))
    if (got != (status, code) and got not in also) or not body.get("message") or not body.get("id"):
        return f"{response.status_code} {body}"
    if served[:64] in response.content:
        return "the file's bytes were served"
    return None


def test_tampered_links_are_refused_with_or_without_any_token(live_server, parties):
    a, b, links, _ = parties
    wrong = []
    cases = tampered(links)
    for what, url, status, code in cases:
        # a name holding '/' once decoded matches no route: 404 NotFound is as good a refusal
        also = ((404, "NotFound"),) if "%2f" in url.lower() else ()
        for who, headers in (("no token", {}), ("B", b), ("A", a)):
            for method in ("GET", "HEAD"):
                response = Raw(method, url, headers)
                if method == "HEAD":  # no body: the status says it all
                    if response.status_code not in {status} | {pair[0] for pair in also}:
                        wrong.append(f"HEAD {what} ({who}): {response.status_code}")
                    continue
                if (why := assert_refused(response, status, code, links.body, also)) is not None:
                    wrong.append(f"{what} ({who}): {why}")
    assert wrong == [], "\n".join(wrong)
    assert len(cases) >= 50


def test_expired_links_answer_410(live_server, parties):
    a, b, links, _ = parties
    signer = live_server.services.result_urls
    past = time.time() - signer.ttl - 10
    expired = {"assets": signer.url(live_server.url, links.job_id, links.name, now=past),
               "items": signer.url(live_server.url, links.job_id, links.name, now=past, kind="items"),
               "results": signer.document_url(live_server.url, links.job_id, now=past)}
    wrong = []
    for kind, url in expired.items():
        for who, headers in (("no token", {}), ("B", b), ("A", a)):
            why = assert_refused(requests.get(url, headers=headers, timeout=60), 410, "ResultLinkExpired", links.body)
            if why is not None:
                wrong.append(f"{kind} ({who}): {why}")
    assert wrong == []


def test_a_valid_link_is_a_capability_the_same_for_every_caller(parties):
    a, b, links, _ = parties
    for url in links.urls.values():
        answers = {who: requests.get(url, headers=headers, timeout=60) for who, headers in
                   (("no token", {}), ("B", b), ("A", a))}
        assert {who: r.status_code for who, r in answers.items()} == {"no token": 200, "B": 200, "A": 200}
        assert len({r.content for r in answers.values()}) == 1
    assert links.body[:4] in (b"II*\x00", b"II+\x00")


def test_links_of_a_deleted_job_serve_nothing(live_server, parties):
    a, b, _, links = parties
    for url in links.urls.values():
        assert requests.get(url, timeout=60).status_code == 200
    assert requests.delete(f"{live_server.url}/jobs/{links.job_id}", headers=a, timeout=60).status_code == 204
    expected = {"assets": (404, "FileNotFound"), "items": (404, "FileNotFound"), "results": (404, "JobNotFound")}
    wrong = []
    for kind, url in links.urls.items():
        for who, headers in (("no token", {}), ("B", b), ("A", a)):
            why = assert_refused(requests.get(url, headers=headers, timeout=60), *expected[kind], links.body)
            if why is not None:
                wrong.append(f"{kind} ({who}): {why}")
    assert wrong == []
