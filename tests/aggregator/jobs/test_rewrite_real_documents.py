"""Real job documents of our backend (one small batch job run on the shared live server and job runner)
as the aggregator shows them: links into the aggregator under the federated id, signed hrefs untouched,
nothing else changed; and the merged listing over two real backends' GET /jobs."""

from __future__ import annotations

import calendar
import copy
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import openeo
import pytest
import requests

from aggregator.jobs import ids, rewrite
from aggregator.jobs.cursor import CursorCodec
from aggregator.jobs.listing import merged_page
from aggregator.jobs.urls import JobUrls, is_signed
from tests.e2e.test_batch_jobs import ndvi_composite

AGGREGATOR = "http://aggregator.test/openeo/1.2"
BACKEND = "ours"


@dataclass(frozen=True)
class RealJob:
    root: str  # the live server's API root (no trailing slash)
    headers: dict
    job_id: str
    job: dict
    results: dict
    logs: dict  # the first page of one entry (it has a next link)
    estimate: dict
    reader: dict  # a second job (not run) whose graph reads the first one's results with load_stac

    @property
    def urls(self) -> JobUrls:
        return JobUrls.of(AGGREGATOR, BACKEND, self.root)

    @property
    def federated_id(self) -> str:
        return ids.encode(BACKEND, self.job_id)


@pytest.fixture(scope="module")
def real(live_server, job_runner) -> RealJob:
    name, password = live_server.new_user()
    connection = openeo.connect(live_server.url).authenticate_basic(name, password)
    job = ndvi_composite(connection).create_job(out_format="GTiff", title="for the aggregator")
    job.start_and_wait(max_poll_interval=0.5, print=lambda *_: None)
    headers = {"Authorization": f"Bearer basic//{live_server.basic_token(name, password)}"}
    root = live_server.url

    def get(path: str) -> dict:
        response = requests.get(f"{root}/{path}", headers=headers, timeout=60)
        response.raise_for_status()
        return response.json()

    reader_graph = {"load": {"process_id": "load_stac", "arguments": {"url": f"{root}/jobs/{job.job_id}/results"}},
                    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"},
                                                                         "format": "GTiff"}, "result": True}}
    created = requests.post(f"{root}/jobs", json={"process": {"process_graph": reader_graph}}, headers=headers)
    assert created.status_code == 201, created.text
    return RealJob(root, headers, job.job_id, get(f"jobs/{job.job_id}"), get(f"jobs/{job.job_id}/results"),
                   get(f"jobs/{job.job_id}/logs?limit=1"), get(f"jobs/{job.job_id}/estimate"),
                   get(f"jobs/{created.headers['OpenEO-Identifier']}"))


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def assert_no_token_links_to_the_backend(document: dict, backend_root: str) -> None:
    leaks = [s for s in strings(document) if s.startswith(backend_root) and not is_signed(s)]
    assert leaks == []


def test_job_document(real):
    before = copy.deepcopy(real.job)
    shown = rewrite.job_document(real.job, real.urls)
    assert real.job == before
    fid = real.federated_id
    assert shown["id"] == fid and ids.decode(fid) == ids.BackendJobRef(BACKEND, real.job_id)
    assert {link["rel"]: link["href"] for link in shown["links"]} == {
        "monitor": f"{AGGREGATOR}/jobs/{fid}/logs", "result": f"{AGGREGATOR}/jobs/{fid}/results"}
    assert [{k: v for k, v in link.items() if k != "href"} for link in shown["links"]] == \
           [{k: v for k, v in link.items() if k != "href"} for link in real.job["links"]]
    assert shown["federation:backends"] == [BACKEND]
    unchanged = set(real.job) - {"id", "links"}
    assert {"status", "created", "updated", "process", "usage", "progress"} <= unchanged
    assert {k: shown[k] for k in unchanged} == {k: real.job[k] for k in unchanged}
    assert_no_token_links_to_the_backend(shown, real.root)


def test_results_document(real):
    shown = rewrite.results_document(real.results, real.urls, job_id=real.job_id)
    fid = real.federated_id
    assert shown["id"] == fid
    links = {(link["rel"], link.get("title")): link["href"] for link in shown["links"]}
    original = {(link["rel"], link.get("title")): link["href"] for link in real.results["links"]}
    assert links[("self", None)] == f"{AGGREGATOR}/jobs/{fid}/results"
    assert links[("monitor", None)] == f"{AGGREGATOR}/jobs/{fid}/logs"
    for kept in [("canonical", "Signed URL of these results"), ("root", None), ("item", "result.tif")]:
        assert links[kept] == original[kept] and is_signed(links[kept])  # token-free: kept
    assert shown["assets"] == real.results["assets"]
    for asset in shown["assets"].values():
        download = requests.get(asset["href"], timeout=60)  # no token: still works from anywhere
        assert download.status_code == 200 and download.content
    unchanged = set(real.results) - {"id", "links"}
    assert {k: shown[k] for k in unchanged} == {k: real.results[k] for k in unchanged}
    assert_no_token_links_to_the_backend(shown, real.root)


def test_an_unsigned_asset_of_another_backend_goes_through_the_aggregator(real):
    document = copy.deepcopy(real.results)
    asset = document["assets"]["result.tif"]
    asset["href"] = asset["href"].split("?")[0]  # a backend whose downloads need the user's token
    shown = rewrite.results_document(document, real.urls, job_id=real.job_id)
    assert shown["assets"]["result.tif"]["href"] == f"{AGGREGATOR}/jobs/{real.federated_id}/results/assets/result.tif"
    assert {k: v for k, v in shown["assets"]["result.tif"].items() if k != "href"} == \
           {k: v for k, v in asset.items() if k != "href"}


def test_logs_document(real):
    assert len(real.logs["logs"]) == 1
    shown = rewrite.logs_document(real.logs, real.urls)
    assert shown["logs"] == real.logs["logs"] and shown["level"] == real.logs["level"]
    (link,) = [link for link in shown["links"] if link["rel"] == "next"]
    parts = urlsplit(link["href"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{AGGREGATOR}/jobs/{real.federated_id}/logs"
    assert parse_qs(parts.query) == {"offset": [real.logs["logs"][0]["id"]], "limit": ["1"], "level": ["debug"]}
    assert rewrite.logs_next_offset(real.logs) == real.logs["logs"][0]["id"]
    assert rewrite.logs_next_offset(shown) == real.logs["logs"][0]["id"]


def test_estimate_document(real):
    assert rewrite.estimate_document(real.estimate, real.urls) == real.estimate
    assert {"costs", "duration"} & set(real.estimate)


def test_a_graph_reading_results_shows_the_aggregator_url(real):
    shown = rewrite.job_document(real.reader, real.urls)
    url = shown["process"]["process_graph"]["load"]["arguments"]["url"]
    assert url == f"{AGGREGATOR}/jobs/{real.federated_id}/results"
    assert real.reader["process"]["process_graph"]["load"]["arguments"]["url"].startswith(real.root)


def test_merged_listing_over_two_real_backends(live_server):
    """Two users of the live server stand in for two backends; their jobs, created in the same seconds,
    merge into one order whatever page size, following our backend's own next links."""
    users = {}
    for backend_id in ("one", "two"):
        name, password = live_server.new_user()
        users[backend_id] = {"Authorization": f"Bearer basic//{live_server.basic_token(name, password)}"}
    graph = {"process": {"process_graph": {"c": {"process_id": "constant", "arguments": {"x": 1}, "result": True}}}}
    for round_ in range(4):
        for backend_id in ("one", "two", "one"):
            response = requests.post(f"{live_server.url}/jobs", json={**graph, "title": f"{backend_id} {round_}"},
                                     headers=users[backend_id])
            assert response.status_code == 201
        time.sleep(0.3)
    root = live_server.url + "/"

    def fetch(backend_id: str, limit: int | None, token: str | None):
        url = token or (f"{root}jobs" + (f"?limit={limit}" if limit else ""))
        assert url.startswith(root)  # the service checks a backend's next link stays on that backend
        body = requests.get(url, headers=users[backend_id], timeout=30).json()
        following = [link["href"] for link in body["links"] if link["rel"] == "next"]
        return body["jobs"], following[0] if following else None

    codec = CursorCodec("secret")
    everything = merged_page(["one", "two"], fetch, None, None, codec=codec, scope="u", root=AGGREGATOR,
                             backend_roots={"one": root, "two": root})
    assert len(everything.jobs) == 12 and everything.next is None
    order = [(job["created"], job["id"]) for job in everything.jobs]
    assert order == sorted(order, key=lambda e: (-calendar.timegm(time.strptime(e[0], "%Y-%m-%dT%H:%M:%SZ")), e[1]))
    assert len({created for created, _ in order}) < len(order)  # ties, broken by federated id
    for limit in (1, 2, 5):
        listed, token = [], None
        while True:
            page = merged_page(["one", "two"], fetch, limit, token, codec=codec, scope="u", root=AGGREGATOR,
                               backend_roots={"one": root, "two": root})
            listed += [job["id"] for job in page.jobs]
            token = page.next
            if token is None:
                break
        assert listed == [job["id"] for job in everything.jobs]
    assert {job["federation:backends"][0] for job in everything.jobs} == {"one", "two"}
    assert all(link["href"].startswith(AGGREGATOR) for job in everything.jobs for link in job.get("links", []))
