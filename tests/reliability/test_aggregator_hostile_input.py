"""The hostile input of test_hostile_input.py, sent to the aggregator, generated from its route table.

The aggregator (its admin routes included: the caller is an administrator, so hostile backend ids reach the
admin code) federates two real backends (tests/reliability/fuzz_targets.py: A and B, in-process, the demo
catalog). Every route × method gets the backend suite's HOSTILE_SEGMENTS in each path variable (the others
hold the caller's real ids: a job made through the aggregator, a UDP, a collection, a backend), every GET route
its QUERY_VALUES in every query parameter, sent byte for byte; every JSON route a body over
``max_request_bytes`` with a Content-Length and chunked. Never a 5xx; every 4xx an openEO error; no answer
holds a byte of the aggregator's or a backend's secret key, and no line break in a header.
"""

from __future__ import annotations

import json

import pytest

from aggregator.jobs import ids as federated_ids
from backend.demo import DEMO_S2_COLLECTION
from tests.aggregator.app.conftest import AggregatorServer, settings_for
from tests.conftest import API
from tests.reliability import fuzz_targets
from tests.reliability.test_hostile_input import (GRAPH, HOSTILE_SEGMENTS, Caller, absurd_query_findings, body_for,
                                                  fill, methods, problem)
from tests.support.postgres import postgres_module_url, postgres_url  # noqa: F401  (fixtures)

BODY_LIMIT = 10 * 1024 * 1024  # the setting's default, the production value
NO_BODY = {("POST", "jobs.start_job"), ("POST", "federation_admin.check_backend")}  # read no body
USER = fuzz_targets.USER


# PostgreSQL in the long profile only (no finding there; keeps the short profile's time down)
@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres,
                                                                                   pytest.mark.long_profile])])
def federation(request, tmp_path_factory, demo_catalog_dir):
    """The aggregator's own database on SQLite and on PostgreSQL (which refuses what SQLite stores: NUL
    characters, strings over a column's size); the backends on SQLite (test_hostile_input.py covers theirs)."""
    database_url = request.getfixturevalue("postgres_module_url") if request.param == "postgres" else None
    base = tmp_path_factory.mktemp("hostile-backends")
    a, b = fuzz_targets.start_backends(base, demo_catalog_dir)
    settings = settings_for(tmp_path_factory.mktemp("hostile-aggregator"), {"A": a.url, "B": b.url},
                            admins=[USER[0]], max_request_bytes=BODY_LIMIT, database_url=database_url,
                            **fuzz_targets.AGGREGATOR_TIMEOUTS)
    server = AggregatorServer(settings)
    server.new_user(USER[1], name=USER[0])
    try:
        yield server, [base / "a", base / "b"]
    finally:
        server.stop()
        a.stop()
        b.stop()


class AggregatorCaller(Caller):
    """The backend suite's raw sender, with the aggregator's token."""

    def __init__(self, server):
        self.server = server
        self.headers = server.auth_headers(*USER)
        self.user_id = self.send("GET", API + "/me")[2]["user_id"]


@pytest.fixture(scope="module")
def world(federation):
    server, backends = federation
    caller = AggregatorCaller(server)
    json_headers = {"Content-Type": "application/json"}
    created = caller.send("POST", API + "/jobs", json.dumps({"process": GRAPH}).encode(), json_headers)
    assert created[0] == 201, created[3][:300]
    assert caller.send("PUT", API + "/process_graphs/mine", json.dumps(GRAPH).encode(), json_headers)[0] == 200
    ids = {"job_id": created[1]["OpenEO-Identifier"], "process_graph_id": "mine", "collection_id": DEMO_S2_COLLECTION,
           "backend_id": "A"}
    secrets = [(server.parts.settings.data_dir / "secret.key").read_bytes()[:32]]
    secrets += [(data_dir / "secret.key").read_bytes()[:32] for data_dir in backends if (data_dir / "secret.key").exists()]
    return caller, ids, secrets


def api_rules(server):
    return [rule for rule in server.app.url_map.iter_rules() if rule.rule.startswith(API)]


def test_hostile_path_variables_on_every_route(federation, world):
    server, _ = federation
    caller, ids, secrets = world
    wrong, sent = [], 0
    rules = [rule for rule in api_rules(server) if rule.arguments]
    assert {name for rule in rules for name in rule.arguments} <= set(ids), "add the new path variables to ids"
    for rule in rules:
        for method in methods(rule):
            body, headers = body_for(method)
            for variable in sorted(rule.arguments):
                for what, value in HOSTILE_SEGMENTS.items():
                    sent += 1
                    answer = caller.send(method, fill(rule, {**ids, variable: value}), body, headers)
                    if (why := problem(answer, secrets)) is not None:
                        wrong.append(f"{method} {rule.rule} {variable}={what}: {why}")
    assert wrong == [], "\n".join(wrong)
    assert sent >= 240  # 16 route × method pairs with a path variable × 15 values
    print(f"\naggregator hostile path values: {sent} requests, 0 findings")


def test_absurd_query_values_on_every_get_route(federation, world):
    server, _ = federation
    caller, ids, secrets = world
    wrong, sent = absurd_query_findings(server, caller, ids, secrets)
    assert wrong == [], "\n".join(wrong)
    assert sent >= 500
    print(f"\naggregator absurd query values: {sent} requests, 0 findings")


def test_bodies_over_the_limit_are_413_on_every_json_route(federation, world):
    server, _ = federation
    caller, ids, secrets = world
    too_big = b'{"process": {"process_graph": {}}, "pad": "' + b"x" * BODY_LIMIT + b'"}'
    wrong, routes = [], 0
    for rule in api_rules(server):
        for method in set(methods(rule)) & {"POST", "PUT", "PATCH"}:
            if (method, rule.endpoint) in NO_BODY:
                continue
            routes += 1
            path = fill(rule, ids)
            for framing, body in (("Content-Length", too_big), ("chunked", iter([too_big[:BODY_LIMIT // 2],
                                                                                  too_big[BODY_LIMIT // 2:]]))):
                answer = caller.send(method, path, body, {"Content-Type": "application/json"})
                status, _, document, raw = answer
                if (why := problem(answer, secrets)) is not None or status != 413 \
                        or document.get("code") != "PayloadTooLarge" or str(BODY_LIMIT) not in document["message"]:
                    wrong.append(f"{method} {rule.rule} ({framing}): {why or (status, raw[:200])}")
    assert wrong == [], "\n".join(wrong)
    assert routes >= 6  # graphs, results, validation, jobs (create, update), backend registration


def test_federated_ids_carrying_hostile_backend_job_ids(federation, world):
    """Regression: federated job ids are checked, not secret (aggregator/jobs/ids.py), so anyone can make a
    valid one for any backend job id; with '..', '.' or '/' the aggregator called other resources of the
    backend with the user's token (GET /jobs/{id} read the backend's capabilities: 502; DELETE
    /jobs/{id}/results answered the backend's 204). Now every job route answers 404 JobNotFound for them."""
    server, _ = federation
    caller, ids_, secrets = world
    wrong, sent = [], 0
    hostile = ["..", ".", "../..", "../process_graphs/mine", "..%2fprocess_graphs", "a\x00b", "a\r\nX-Injected: 1",
               "a b", "\xff", "a" * 10_240, "9" * 40, "/", "?limit=1", "#", "mine\n"]
    for rule in api_rules(server):
        if "job_id" not in rule.arguments:
            continue
        for method in methods(rule):
            body, headers = body_for(method)
            for backend_job_id in hostile:
                sent += 1
                path = fill(rule, {**ids_, "job_id": federated_ids.encode("A", backend_job_id)})
                answer = caller.send(method, path, body, headers)
                if (why := problem(answer, secrets)) is not None or (answer[0], answer[2]["code"]) != (404, "JobNotFound"):
                    wrong.append(f"{method} {rule.rule} A:{backend_job_id[:20]!r}: {why or (answer[0], answer[3][:200])}")
    assert wrong == [], "\n".join(wrong)
    assert sent >= 100
    print(f"\ncrafted federated ids: {sent} requests, 0 findings")
