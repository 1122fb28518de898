"""Isolation between users through the aggregator, generated from its route table (test_isolation.py's
twin: the same helpers, the aggregator's routes and items).

The aggregator federates two real backends: A (the session's live server with its job runner; the
federation hides its Sentinel-1 collection) and B (in-process, Sentinel-1 and DEM), so that a graph
reading Sentinel-2 and Sentinel-1 becomes a split job. User A owns, through the aggregator, a finished
federated job on backend A (results, logs, estimate), a split job (``s1-`` id, held in the aggregator's
database) and a UDP (stored by the aggregator). User B, holding A's ids, gets exactly the answer of an
id that names nothing (status, code and message, the ids swapped; the backend's own job id too, which
the aggregator's messages may quote) for every route × method that takes a path variable, with each
kind of A's job ids. B's listings show nothing of A's, B's PUT of A's UDP name makes B's own UDP, and
A's items are unchanged afterwards. The id naming nothing must answer 404 (admin routes: 403 for B).
Ids in bodies too: B's graphs reading A's job (load_result, or load_stac of its or the split job's
results URL, also run on backend B, which needs A's signed URL) or calling A's UDP, sent to POST /jobs, /result and /validation, are answered as for ones
that do not exist; A's page token of the job listing is refused to B.

Without a token every route answers 401 except the declared public ones; the aggregator has no
capability URLs (result downloads are the backends' signed URLs, test_signed_links.py). A route whose
path variables are not in path_values, or a public entry whose route is gone, fails the suite.
"""

from __future__ import annotations

import itertools
import uuid

import pytest
import requests

from aggregator.jobs import ids
from aggregator.routing import FORCE_BACKEND
from aggregator.servers import link_catalog
from aggregator.settings import AggregatorSettings
from backend.app import create_app
from backend.demo import DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION
from backend.settings import load_settings as backend_settings
from tests.aggregator.app.conftest import FAST_HEALTH, AggregatorServer, wait_until
from tests.conftest import LiveServer
from tests.reliability.test_admin_routes import ADMIN
from tests.reliability.test_isolation import (BODIES, GRAPH, SMALL_JOB, User, _wait_finished, answer, api_rules, fill,
                                              methods)

pytestmark = pytest.mark.usefixtures("job_runner")

# Endpoints of the aggregator anyone may call without a token, and why (it has no capability URLs).
PUBLIC = {
    "well_known.well_known", "well_known_under_api.well_known", "health.health", "static",
    "discovery.capabilities", "discovery.conformance", "discovery.list_file_formats", "discovery.udf_runtimes",
    "collections.list_collections", "collections.describe_collection", "collections.collection_queryables",
    "processes.list_processes",
    "account.basic_token",  # takes Basic credentials, not a token
    "validation.validate",  # validates a graph; reads no user data (the caller's UDPs need a token)
}
TIMEOUTS = {**FAST_HEALTH, "metadata_timeout": 10.0, "fanout_deadline": 5.0, "jobs_listing_deadline": 5.0,
            "health_timeout": 2.0}
SPLIT_JOB = {"title": "A's split job", "process": {"process_graph": {
    "s2": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "bands": ["B04"], "temporal_extent": ["2022-06-01", "2022-06-05"],
        "spatial_extent": {"west": 679720, "east": 680080, "south": 5151560, "north": 5151920, "crs": 32632}}},
    "s1": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S1_COLLECTION, "temporal_extent": ["2022-06-01", "2022-06-05"],
        "spatial_extent": {"west": 679720, "east": 680080, "south": 5151560, "north": 5151920, "crs": 32632}}},
    "merge": {"process_id": "merge_cubes", "arguments": {"cube1": {"from_node": "s2"}, "cube2": {"from_node": "s1"}}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "merge"}, "format": "GTiff"},
             "result": True}}}}


class FederatedUser(User):
    """A user known to the aggregator and both backends (same name and password: basic login)."""

    def __init__(self, aggregator: AggregatorServer, backends: list[LiveServer]):
        name, password = f"iso-{uuid.uuid4().hex[:8]}", "iso-password"
        for backend in backends:
            backend.services.users.add(name, password)
        aggregator.new_user(password, name=name)
        self.headers = aggregator.auth_headers(name, password)
        self.url = aggregator.url
        self.user_id = self.get("/me").json()["user_id"]


@pytest.fixture(scope="module")
def federation(live_server, demo_catalog_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("aggregator-isolation")
    link_catalog(base / "b", demo_catalog_dir)
    b = LiveServer(create_app(backend_settings(data_dir=base / "b", backend_id="B",
                                               demo_collections=[DEMO_S1_COLLECTION, DEMO_DEM_COLLECTION])))
    backends = [{"id": "A", "url": live_server.url, "collections": {"deny": [DEMO_S1_COLLECTION]}},
                {"id": "B", "url": b.url}]
    aggregator = AggregatorServer(AggregatorSettings(data_dir=base / "aggregator", backends=backends, **TIMEOUTS))
    try:
        wait_until(lambda: all(entry.get("status") == "online" for entry in
                               requests.get(aggregator.url + "/", timeout=30).json()["federation"].values()), 60)
        yield aggregator, [live_server, b]
    finally:
        aggregator.stop()
        b.stop()


@pytest.fixture(scope="module")
def owner(federation):
    """User A with a finished federated job on backend A, a split job and a UDP, all made through the
    aggregator; their ids."""
    aggregator, backends = federation
    a = FederatedUser(aggregator, backends)
    created = a.request("POST", "/jobs", json=SMALL_JOB)
    assert created.status_code == 201, created.text
    job_id = created.headers["OpenEO-Identifier"]
    assert ids.decode(job_id).backend_id == "A"
    assert a.request("POST", f"/jobs/{job_id}/results").status_code == 202
    status = _wait_finished(a, job_id)
    assert status == "finished", a.get(f"/jobs/{job_id}/logs").text
    split = a.request("POST", "/jobs", json=SPLIT_JOB)
    assert split.status_code == 201, split.text
    split_id = split.headers["OpenEO-Identifier"]
    assert split_id.startswith(ids.SPLIT_PREFIX + "-")
    udp_id = "a_private_udp"
    assert a.request("PUT", f"/process_graphs/{udp_id}", json={**GRAPH, "description": "A's"}).status_code == 200
    assets = list(a.get(f"/jobs/{job_id}/results").json()["assets"])
    return a, {"job_id": job_id, "split_id": split_id, "process_graph_id": udp_id, "assets": assets}


def path_values(values: dict) -> dict[str, list[tuple[str, str]]]:
    """Every path variable of the aggregator: each kind of A's item as (A's id, the same kind of id naming
    nothing). Job ids: a federated job on backend A, and a split job."""
    federated = ids.decode(values["job_id"])
    missing_federated = ids.encode(federated.backend_id, uuid.uuid4().hex)
    return {"job_id": [(values["job_id"], missing_federated),
                       (values["split_id"], ids.split_job_id(uuid.uuid4().hex))],
            "process_graph_id": [(values["process_graph_id"], "no_such_udp")],
            "backend_id": [("A", "no-such-backend")],  # admin routes: B is refused either way
            "collection_id": [(DEMO_S2_COLLECTION, DEMO_S2_COLLECTION)]}  # public


def swapped_ids(rule_values: dict[str, tuple[str, str]]) -> dict[str, str]:
    """A's ids -> the missing ones, with the backend job ids inside federated ids (messages may quote them)."""
    swap = {}
    for mine, missing in rule_values.values():
        swap[mine] = missing
        if mine.startswith(ids.JOB_PREFIX + "-"):
            swap[ids.decode(mine).job_id] = ids.decode(missing).job_id
    return swap


def test_every_aggregator_route_is_public_or_needs_a_token(federation):
    aggregator, _ = federation
    endpoints = {rule.endpoint for rule in aggregator.app.url_map.iter_rules()}
    assert PUBLIC <= endpoints, f"drop the public entries of routes that are gone: {PUBLIC - endpoints}"
    table = {name: (value, value) for name, value in
             {"job_id": "j", "process_graph_id": "p", "backend_id": "b", "collection_id": "c"}.items()}
    unexpected, checked = [], 0
    for rule in api_rules(aggregator):
        if rule.endpoint in PUBLIC:
            continue
        assert rule.arguments <= set(table), f"add the path variables {rule.arguments - set(table)}"
        for method in methods(rule):
            response = requests.request(method, aggregator.url + fill(rule, table, 0), timeout=30)
            checked += 1
            if response.status_code != 401 or response.json().get("code") != "AuthenticationRequired":
                unexpected.append(f"{method} {rule.rule}: {response.status_code} {response.text[:120]}")
    assert unexpected == []
    assert checked >= 20  # jobs, UDPs, account, processing, federation admin
    print(f"\n{checked} route × method pairs answered 401 without a token")


def test_b_cannot_read_change_delete_or_detect_the_items_of_a(federation, owner):
    aggregator, backends = federation
    a, values = owner
    b = FederatedUser(aggregator, backends)
    table = path_values(values)
    variables = {name for rule in api_rules(aggregator) for name in rule.arguments}
    assert variables <= set(table), f"add the path variables {variables - set(table)} to path_values"

    owned = [rule for rule in api_rules(aggregator) if rule.arguments and rule.endpoint not in PUBLIC]
    order = {"GET": 0, "PATCH": 1, "POST": 2, "DELETE": 3}  # reads first, deletions last
    calls = sorted(((method, rule, choice) for rule in owned for method in methods(rule) if method != "PUT"
                    for choice in itertools.product(*(table[name] for name in sorted(rule.arguments)))),
                   key=lambda call: order[call[0]])
    leaks = []
    for method, rule, choice in calls:
        chosen = dict(zip(sorted(rule.arguments), choice))
        body = BODIES.get((method, rule.endpoint))
        theirs = b.request(method, fill(rule, chosen, 0), json=body)
        missing = b.request(method, fill(rule, chosen, 1), json=body)
        swap = swapped_ids(chosen)
        nothing = 403 if rule.endpoint in ADMIN else 404  # an id naming nothing is not found (admins only: 403)
        if missing.status_code != nothing or theirs.status_code < 400 or answer(theirs, swap) != answer(missing, swap):
            leaks.append(f"{method} {rule.rule} {choice[0][0]}: A's item {answer(theirs, swap)} "
                         f"vs none {answer(missing, swap)}")
    assert leaks == []
    user_calls = [call for call in calls if call[1].endpoint not in ADMIN]
    assert len(user_calls) >= 18  # 8 job route × method pairs × 2 kinds of job, the UDP's GET and DELETE

    # ids in bodies: B's graphs reading A's job or calling A's UDP
    b_jobs = set()  # POST /jobs reads nothing yet: a job of B's that would fail when started
    results_url = f"{aggregator.url}/jobs/{{}}/results"
    for kind, mine, missing in (("load_result", values["job_id"], table["job_id"][0][1]),
                                ("load_stac", results_url.format(values["job_id"]),
                                 results_url.format(table["job_id"][0][1])),
                                ("load_stac on B", results_url.format(values["job_id"]),  # signed URL from A
                                 results_url.format(table["job_id"][0][1])),
                                ("load_stac", results_url.format(values["split_id"]),
                                 results_url.format(table["job_id"][1][1])),
                                ("udp", values["process_graph_id"], "no_such_udp")):
        swap = {**swapped_ids({"job": table["job_id"][0], "split": table["job_id"][1]}), mine: missing}
        for path in ("/jobs", "/result", "/validation"):
            theirs, none = (b.request("POST", path, json=_reading(kind, identifier, path))
                            for identifier in (mine, missing))
            if path == "/validation":  # 200 with a list of errors
                seen = [_swapped(theirs.text, swap), none.text]
                if theirs.status_code != none.status_code or seen[0] != seen[1]:
                    leaks.append(f"POST {path} {kind}: A's {seen[0][:300]} vs none {seen[1][:300]}")
                continue
            if path == "/jobs" and theirs.status_code == none.status_code == 201:  # B's own, for either id alike
                b_jobs.update(response.headers["OpenEO-Identifier"] for response in (theirs, none))
            elif theirs.status_code < 400 or answer(theirs, swap) != answer(none, swap):
                leaks.append(f"POST {path} {kind}: A's {answer(theirs, swap)} vs none {answer(none, swap)}")
    assert leaks == []

    # B's listings never show A's items
    jobs = b.get("/jobs").json()
    assert {job["id"] for job in jobs["jobs"]} == b_jobs and jobs["federation:missing"] == [], jobs
    assert not {values["job_id"], values["split_id"]} & b_jobs
    assert b.get("/process_graphs").json()["processes"] == []
    # nor does A's page token of the job listing (bound to A: refused, as a forged one)
    page = a.get("/jobs?limit=1").json()
    following = next(link["href"] for link in page["links"] if link["rel"] == "next")
    taken = requests.get(following, headers=b.headers, timeout=60)
    assert (taken.status_code, taken.json()["code"]) == (400, "PageTokenInvalid"), taken.text
    assert values["job_id"] not in taken.text and values["split_id"] not in taken.text

    # B's PUT of the same name makes B's own UDP
    assert b.request("PUT", f"/process_graphs/{values['process_graph_id']}", json=GRAPH).status_code == 200
    assert "description" not in b.get(f"/process_graphs/{values['process_graph_id']}").json()

    # A's items are unchanged
    job = a.get(f"/jobs/{values['job_id']}").json()
    assert (job["status"], job["title"]) == ("finished", "A's job")
    assert list(a.get(f"/jobs/{values['job_id']}/results").json()["assets"]) == values["assets"]
    split = a.get(f"/jobs/{values['split_id']}").json()
    assert (split["status"], split["title"]) == ("created", "A's split job")
    estimate = a.get(f"/jobs/{values['split_id']}/estimate")  # B's answer above: 404, as for no job
    assert (estimate.status_code, estimate.json()["code"]) == (501, "FeatureUnsupported")
    assert a.get(f"/process_graphs/{values['process_graph_id']}").json()["description"] == "A's"
    listed = {job["id"] for job in a.get("/jobs").json()["jobs"]}
    assert {values["job_id"], values["split_id"]} <= listed
    print(f"\n{len(calls)} route × method × id pairs ({len(user_calls)} on user items), 15 body pairs, A's page token: 0 findings")


def _swapped(text: str, swap: dict[str, str]) -> str:
    for mine, missing in swap.items():
        text = text.replace(mine, missing)
    return text


def _reading(kind: str, identifier: str, path: str) -> dict:
    """A request body whose graph reads job ``identifier`` (load_result) or calls UDP ``identifier``."""
    if kind == "load_result":
        node = {"process_id": "load_result", "arguments": {"id": identifier}}
    elif kind.startswith("load_stac"):
        node = {"process_id": "load_stac", "arguments": {"url": identifier}}
    else:
        node = {"process_id": identifier, "arguments": {}}
    save = {"process_id": "save_result", "arguments": {"data": {"from_node": "n"}, "format": "GTiff"}, "result": True}
    graph = {"process_graph": {"n": node, "save": save}}
    forced = {FORCE_BACKEND: "B"} if kind.endswith("on B") else {}  # another backend than the job's
    return {**graph, **forced} if path == "/validation" else {"process": graph, **forced}


def test_the_estimate_of_a_split_job_id_naming_nothing_is_not_found(federation):
    """Regression: GET /jobs/s1-…/estimate answered 501 FeatureUnsupported before looking the job up, for
    another user's split job and a made-up id alike, where every other job route answers 404."""
    aggregator, backends = federation
    user = FederatedUser(aggregator, backends)
    made_up = ids.split_job_id(uuid.uuid4().hex)
    response = user.get(f"/jobs/{made_up}/estimate")
    assert (response.status_code, response.json()["code"]) == (404, "JobNotFound")
    assert response.json()["message"] == f"The batch job '{made_up}' does not exist."
