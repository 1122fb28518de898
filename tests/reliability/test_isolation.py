"""Isolation between users, generated from the app's route table so that a new route cannot escape it.

For every route that addresses one user's item (jobs, results, result assets and items, logs, estimates,
UDPs, files, services), user B, holding user A's ids, gets exactly the answer of an id that does not exist
(status, code and message, the ids swapped): B can neither read, modify nor delete A's items, nor learn
that they exist. B's listings never show them, B's own PUT of the same name makes B's own item, and after
everything A's items are unchanged. Without a token every route answers 401 except the declared public ones.
A route whose path variables are not in path_values fails the suite until it is added here.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
from werkzeug.routing import Rule

from backend.demo import DEMO_S2_COLLECTION
from tests.conftest import API

pytestmark = pytest.mark.usefixtures("job_runner")

# Endpoints anyone may call without a token, and why.
PUBLIC = {
    "well_known.well_known", "well_known_under_api.well_known", "health.health", "static",
    "discovery.capabilities", "discovery.conformance", "discovery.list_file_formats", "discovery.udf_runtimes",
    "collections.list_collections", "collections.describe_collection", "collections.collection_queryables",
    "processes.list_processes", "web_services.service_types",
    "account.basic_token",  # takes Basic credentials, not a token
    "public_udps.catalogue", "public_udps.describe",  # published UDPs only (private ones: see below)
    "validation.validate",  # validates a graph; reads no user data
}
# Capability URLs: an unguessable id or an HMAC signature is the authorisation (clients send no token).
CAPABILITY = {
    "signed_results.signed_results", "signed_results.download_asset", "signed_results.result_item",
    "web_services.tile",
}
# Bodies of B's modifying requests (PUT makes B's own item: tested separately).
BODIES = {("PATCH", "jobs.update_job"): {"title": "taken by B"},
          ("PATCH", "web_services.update_service"): {"title": "taken by B"}}
GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
SMALL_JOB = {"process": {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {
        "id": DEMO_S2_COLLECTION, "bands": ["B04"], "temporal_extent": ["2022-06-01", "2022-06-05"],
        "spatial_extent": {"west": 679720, "east": 680080, "south": 5151560, "north": 5151920, "crs": 32632}}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
             "result": True}}}, "title": "A's job"}


class User:
    def __init__(self, server):
        self.headers = server.auth_headers()
        self.url = server.url
        self.user_id = self.get("/me").json()["user_id"]

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path, headers={**self.headers, **kwargs.pop("headers", {})},
                                timeout=60, **kwargs)

    def get(self, path: str) -> requests.Response:
        return self.request("GET", path)


@pytest.fixture(scope="module")
def owner(live_server):
    """User A with one item of every kind: a finished job (results, assets, items, logs), a private UDP, a
    file and a service."""
    a = User(live_server)
    created = a.request("POST", "/jobs", json=SMALL_JOB)
    job_id = created.headers["OpenEO-Identifier"]
    assert a.request("POST", f"/jobs/{job_id}/results").status_code == 202
    status = _wait_finished(a, job_id)
    assert status == "finished", a.get(f"/jobs/{job_id}/logs").text
    results = a.get(f"/jobs/{job_id}/results").json()
    udp_id = "a_private_udp"
    assert a.request("PUT", f"/process_graphs/{udp_id}", json={**GRAPH, "description": "A's"}).status_code == 200
    assert a.request("PUT", "/files/private/notes.txt", data=b"A's notes").status_code == 200
    service = a.request("POST", "/services", json={"type": "XYZ", "title": "A's service", "process": GRAPH})
    assert service.status_code == 201
    values = {"job_id": job_id, "name": next(iter(results["assets"])), "process_graph_id": udp_id,
              "filepath": "private/notes.txt", "service_id": service.headers["OpenEO-Identifier"],
              "owner_id": a.user_id, "process_id": udp_id}
    return a, values


def _wait_finished(user: User, job_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = user.get(f"/jobs/{job_id}").json()["status"]
        if status in ("finished", "error"):
            return status
        time.sleep(0.2)
    return "timeout"


def path_values(values: dict) -> dict[str, tuple[str, str]]:
    """Every path variable: (A's item, the same kind of value naming nothing)."""
    missing = uuid.uuid4().hex
    return {"job_id": (values["job_id"], missing), "service_id": (values["service_id"], missing),
            "process_graph_id": (values["process_graph_id"], "no_such_udp"),
            "process_id": (values["process_id"], "no_such_udp"),
            "owner_id": (values["owner_id"], values["owner_id"]),
            "path": (values["filepath"], "private/no-such-file.txt"),
            "name": (values["name"], "no-such-asset.tif"),
            "z": ("0", "0"), "x": ("0", "0"), "y": ("0", "0"),
            "collection_id": (DEMO_S2_COLLECTION, DEMO_S2_COLLECTION)}  # public


def api_rules(live_server) -> list[Rule]:
    return [rule for rule in live_server.app.url_map.iter_rules() if rule.rule.startswith(API)]


def methods(rule: Rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def fill(rule: Rule, table: dict[str, tuple[str, str]], which: int) -> str:
    path = rule.rule[len(API):]
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: table[m.group(1)][which], path)


def answer(response: requests.Response, swap: dict[str, str]) -> tuple:
    """Status, code and message, with A's ids replaced by the missing ones."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, None, response.text[:200]
    message = body.get("message", "") if isinstance(body, dict) else ""
    for mine, missing in swap.items():
        message = message.replace(mine, missing)
    return response.status_code, body.get("code") if isinstance(body, dict) else None, message


def test_every_route_is_public_or_needs_a_token(live_server):
    unexpected = []
    for rule in api_rules(live_server):
        if rule.endpoint in PUBLIC or rule.endpoint in CAPABILITY:
            continue
        table = {name: (value, value) for name, value in
                 {"job_id": "j", "service_id": "s", "process_graph_id": "p", "path": "f.txt", "name": "n",
                  "z": "0", "x": "0", "y": "0", "owner_id": "o", "process_id": "p"}.items()}
        for method in methods(rule):
            response = requests.request(method, live_server.url + fill(rule, table, 0), timeout=30)
            if response.status_code != 401 or response.json().get("code") != "AuthenticationRequired":
                unexpected.append(f"{method} {rule.rule}: {response.status_code} {response.text[:120]}")
    assert unexpected == []


def test_b_cannot_read_change_delete_or_detect_the_items_of_a(live_server, owner):
    a, values = owner
    b = User(live_server)
    table = path_values(values)
    variables = {name for rule in api_rules(live_server) for name in rule.arguments}
    assert variables <= set(table), f"add the path variables {variables - set(table)} to path_values"

    leaks = []
    # tiles: whoever holds a service's 128-bit id may draw it (map clients send no token); the signed-result
    # routes stay in: without A's signature B is refused exactly as for a job that does not exist
    owned = [rule for rule in api_rules(live_server) if rule.arguments - {"z", "x", "y"} and rule.endpoint not in
             (PUBLIC - {"public_udps.describe"}) | {"web_services.tile"}]
    # reads first, then changes, deletions last: each answer must be that of an item that does not exist
    order = {"GET": 0, "PATCH": 1, "POST": 2, "DELETE": 3}
    calls = sorted(((method, rule) for rule in owned for method in methods(rule) if method != "PUT"),
                   key=lambda call: order[call[0]])
    for method, rule in calls:
        body = BODIES.get((method, rule.endpoint))
        theirs = b.request(method, fill(rule, table, 0), json=body)
        missing = b.request(method, fill(rule, table, 1), json=body)
        swap = {table[name][0]: table[name][1] for name in rule.arguments}
        if theirs.status_code < 400 or answer(theirs, swap) != answer(missing, swap):
            leaks.append(f"{method} {rule.rule}: A's item {answer(theirs, swap)} vs none {answer(missing, swap)}")
    assert leaks == []
    assert len(calls) >= 20  # the table covers jobs, results, logs, estimates, UDPs, files and services

    # B's listings never show A's items
    assert b.get("/jobs").json()["jobs"] == [] and b.get("/services").json()["services"] == []
    assert b.get("/process_graphs").json()["processes"] == [] and b.get("/files").json()["files"] == []
    public = b.get("/public/process_graphs").json()
    assert values["process_graph_id"] not in str(public)

    # B's PUT of the same names makes B's own items
    assert b.request("PUT", f"/process_graphs/{values['process_graph_id']}", json=GRAPH).status_code == 200
    assert b.request("PUT", f"/files/{values['filepath']}", data=b"B's notes").status_code == 200
    assert b.get(f"/files/{values['filepath']}").content == b"B's notes"

    # A's items are unchanged
    job = a.get(f"/jobs/{values['job_id']}").json()
    assert (job["status"], job["title"]) == ("finished", "A's job")
    assert values["name"] in a.get(f"/jobs/{values['job_id']}/results").json()["assets"]
    assert a.get(f"/process_graphs/{values['process_graph_id']}").json()["description"] == "A's"
    assert a.get(f"/files/{values['filepath']}").content == b"A's notes"
    assert a.get(f"/services/{values['service_id']}").json()["title"] == "A's service"
