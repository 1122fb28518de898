"""Path traversal and absurd sizes in every path and query parameter, generated from the app's route table,
and request bodies and GeoJSON over the configured limits.

Every route × method gets, in each path variable in turn (the others hold the caller's real ids), traversal
(``..``, ``../``, encoded ``%2e%2e%2f``, double-encoded, backslashes, absolute paths), NUL, CRLF, invalid
UTF-8, 10 kB ids and numbers beyond 64 bits; every GET route gets absurd values in every query parameter
the views read (negative, huge, fractional, not a number, 10 kB, NUL). Sent byte for byte (http.client:
no client-side normalisation of ``..``). Never a 5xx; every 4xx is an openEO error (code, message, id);
no answer holds a byte of the backend's secret key, of a file outside the caller's area or of another
user's file, and afterwards no file outside the caller's workspace was created or changed.

Bodies over ``max_request_bytes`` (with a Content-Length and chunked) → 413 ``PayloadTooLarge`` on every
route that takes a JSON body; GeoJSON with more features than the readers allow → 400 naming the limit.
"""

from __future__ import annotations

import http.client
import json
import re
from pathlib import Path

import pytest
from werkzeug.routing import Rule

from backend.app import create_app
from backend.settings import load_settings
from tests.conftest import API, LiveServer
from tests.reliability.profile import scaled
from tests.support.postgres import postgres_module_url, postgres_url  # noqa: F401  (fixtures)

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
# Encoded as a client would put them in a URL (the server decodes them before routing).
HOSTILE_SEGMENTS = {
    "dot-dot": "..", "dot": ".", "traversal": "../../../../etc/passwd",
    "encoded traversal": "%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.key", "double-encoded traversal": "%252e%252e%252fsecret.key",
    "backslash traversal": "..%5c..%5csecret.key", "absolute": "%2fetc%2fpasswd", "NUL": "a%00b",
    "CRLF": "a%0d%0aSet-Cookie:%20x=1", "invalid UTF-8": "%ff%fe", "10 kB": "a" * 10_240,
    "beyond 64 bits": "9" * 40, "negative": "-1", "non-ASCII": "%C3%A9t%C3%A9", "percent": "%25",
}
QUERY_NAMES = ("limit", "offset", "page", "level", "partial", "expires", "signature")
QUERY_VALUES = scaled(
    ["-1", "9" * 40, "1.5", "a%00b", "a" * 10_240],
    ["-1", "0", "9" * 40, "1e3", "1.5", "abc", "a%00b", "%ff", "", "a" * 10_240, "%2e%2e%2fsecret.key"])
BODY_LIMIT = 10 * 1024 * 1024  # the setting's default, the production value
UPLOAD = ("PUT", "files.upload_file")  # streamed and bounded by the quota instead (tests/api/test_files.py)
NO_BODY = {("POST", "jobs.start_job")}  # reads no body (a body sent anyway is ignored)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path_factory):
    """A backend of its own: a clean data dir, so that any file written outside the caller's area shows; on
    SQLite and on PostgreSQL (which refuses what SQLite stores: NUL characters, strings over a column's size)."""
    data_dir = tmp_path_factory.mktemp("hostile")
    database_url = request.getfixturevalue("postgres_module_url") if request.param == "postgres" else None
    server = LiveServer(create_app(load_settings(data_dir=data_dir, demo_catalog=False, database_url=database_url,
                                                 max_request_bytes=BODY_LIMIT)))
    server.data_dir, server.database = data_dir, request.param
    yield server
    server.stop()


class Caller:
    def __init__(self, server):
        self.server = server
        self.headers = server.auth_headers()
        self.user_id = self.send("GET", API + "/me")[2]["user_id"]

    def send(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, JSON or None, raw body): the path goes out exactly as given."""
        connection = http.client.HTTPConnection("127.0.0.1", int(self.server.root.rsplit(":", 1)[1]), timeout=120)
        try:
            connection.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            document = json.loads(raw) if raw else None
        except ValueError:
            document = None
        return response.status, dict(response.getheaders()), document, raw


@pytest.fixture(scope="module")
def world(backend):
    """Caller A with one item of each kind, user B with a file, and the secrets nobody may read."""
    a, b = Caller(backend), Caller(backend)
    job = a.send("POST", API + "/jobs", json.dumps({"process": GRAPH}).encode(), {"Content-Type": "application/json"})
    service = a.send("POST", API + "/services", json.dumps({"type": "XYZ", "process": GRAPH}).encode(),
                     {"Content-Type": "application/json"})
    assert a.send("PUT", API + "/process_graphs/mine", json.dumps(GRAPH).encode(),
                  {"Content-Type": "application/json"})[0] == 200
    assert a.send("PUT", API + "/files/folder/mine.txt", b"A's own file")[0] == 200
    assert b.send("PUT", API + "/files/secret.key", b"B's private file 7c1e")[0] == 200
    (backend.data_dir / "outside.txt").write_text("outside every workspace 41d9")
    ids = {"job_id": job[1]["OpenEO-Identifier"], "service_id": service[1]["OpenEO-Identifier"],
           "process_graph_id": "mine", "process_id": "mine", "owner_id": a.user_id, "path": "folder/mine.txt",
           "name": "result.tif", "collection_id": "SOME_COLLECTION", "z": "0", "x": "0", "y": "0"}
    secrets = [(backend.data_dir / "secret.key").read_bytes()[:32], b"B's private file 7c1e",
               b"outside every workspace 41d9"]
    return a, ids, secrets


def api_rules(server) -> list[Rule]:
    return [rule for rule in server.app.url_map.iter_rules() if rule.rule.startswith(API)]


def methods(rule: Rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def fill(rule: Rule, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: values[m.group(1)], rule.rule)


def body_for(method: str) -> tuple[bytes | None, dict]:
    if method in ("POST", "PUT", "PATCH"):
        return json.dumps({"process": GRAPH, **GRAPH}).encode(), {"Content-Type": "application/json"}
    return None, {}


def problem(answer, secrets: list[bytes]) -> str | None:
    """Why an answer is wrong: a 5xx, a 4xx that is no openEO error, or a secret in the body."""
    status, headers, document, raw = answer
    if status >= 500:
        return f"{status} {raw[:200]!r}"
    if status >= 400 and not (isinstance(document, dict) and document.get("code") and document.get("message")
                              and document.get("id")):
        return f"{status} is not an openEO error: {raw[:200]!r}"
    if any(secret in raw for secret in secrets):
        return f"{status} serves a secret"
    if any("\r" in value or "\n" in value for value in headers.values()):
        return "a header holds a line break"
    return None


def files_outside(server, user_id: str) -> dict[str, tuple[int, float]]:
    """Every file of the data dir except the caller's own workspace and the database: (size, mtime)."""
    root: Path = server.data_dir
    own = root / "files" / user_id
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime) for path in root.rglob("*")
            if path.is_file() and own not in path.parents and not path.name.startswith("backend.db")}


def test_hostile_path_variables_on_every_route(backend, world):
    a, ids, secrets = world
    before = files_outside(backend, a.user_id)
    wrong, sent = [], 0
    rules = [rule for rule in api_rules(backend) if rule.arguments]
    assert {name for rule in rules for name in rule.arguments} <= set(ids), "add the new path variables to ids"
    for rule in rules:
        for method in methods(rule):
            if (method, rule.endpoint) == UPLOAD:
                body, headers = b"hostile upload", {}
            else:
                body, headers = body_for(method)
            for variable in sorted(rule.arguments):
                for what, value in HOSTILE_SEGMENTS.items():
                    path = fill(rule, {**ids, variable: value})
                    sent += 1
                    if (why := problem(a.send(method, path, body, headers), secrets)) is not None:
                        wrong.append(f"{method} {rule.rule} {variable}={what}: {why}")
    assert wrong == [], "\n".join(wrong)
    assert files_outside(backend, a.user_id) == before  # nothing written or changed outside A's workspace
    assert sent >= 400


def absurd_query_findings(server, caller, ids: dict, secrets) -> tuple[list[str], int]:
    """Every query parameter of every GET route with every absurd value: (what went wrong, requests sent)."""
    wrong, sent = [], 0
    for rule in api_rules(server):
        if "GET" not in rule.methods:
            continue
        path = fill(rule, ids)
        for name in QUERY_NAMES:
            for value in QUERY_VALUES:
                sent += 1
                if (why := problem(caller.send("GET", f"{path}?{name}={value}"), secrets)) is not None:
                    wrong.append(f"GET {rule.rule}?{name}={value[:20]}: {why}")
    return wrong, sent


def test_absurd_query_values_on_every_get_route(backend, world):
    a, ids, secrets = world
    wrong, sent = absurd_query_findings(backend, a, ids, secrets)
    assert wrong == [], "\n".join(wrong)
    assert sent >= 500


def test_bodies_over_the_limit_are_413_on_every_json_route(backend, world):
    a, ids, secrets = world
    too_big = b'{"process": {"process_graph": {}}, "pad": "' + b"x" * BODY_LIMIT + b'"}'
    wrong, routes = [], 0
    for rule in api_rules(backend):
        for method in set(methods(rule)) & {"POST", "PUT", "PATCH"}:
            if (method, rule.endpoint) in {UPLOAD} | NO_BODY:
                continue
            routes += 1
            path = fill(rule, ids)
            for framing, body in (("Content-Length", too_big), ("chunked", iter([too_big[:BODY_LIMIT // 2],
                                                                                  too_big[BODY_LIMIT // 2:]]))):
                # an iterable body goes out chunked (http.client), with no Content-Length
                answer = a.send(method, path, body, {"Content-Type": "application/json"})
                status, _, document, raw = answer
                if (why := problem(answer, secrets)) is not None or status != 413 \
                        or document.get("code") != "PayloadTooLarge" or str(BODY_LIMIT) not in document["message"]:
                    wrong.append(f"{method} {rule.rule} ({framing}): {why or (status, raw[:200])}")
    assert wrong == [], "\n".join(wrong)
    assert routes >= 7  # graphs, results, validation, jobs (create, update), services (create, update)


def feature_collection(count: int) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [11 + i * 1e-6, 46]}}
        for i in range(count)]}


@pytest.mark.parametrize("count, status, fragment", [
    (100_001, 400, "100,001 geometries given; at most 100,000"),
])
def test_geojson_over_the_feature_limit(backend, world, count, status, fragment):
    if backend.database != "sqlite":
        pytest.skip("the limit is the process's, whatever the database")
    a, _, secrets = world
    graph = {"process": {"process_graph": {
        "load": {"process_id": "load_geojson", "arguments": {"data": feature_collection(count)}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GeoJSON"},
                 "result": True}}}}
    body = json.dumps(graph, separators=(",", ":")).encode()
    assert len(body) < BODY_LIMIT  # the feature limit is reachable within the body limit
    answer = a.send("POST", API + "/result", body, {"Content-Type": "application/json"})
    assert problem(answer, secrets) is None
    status_got, _, document, _ = answer
    assert (status_got, document["code"]) == (status, "ProcessParameterInvalid"), document
    assert fragment in document["message"] and "load_geojson" in document["message"]
    assert "aggregate_spatial" not in document["message"]  # regression: named the wrong process


def test_udp_ids_beyond_the_column_size_or_with_a_line_break_are_refused(backend, world):
    """Regression: `^\\w+$` let a trailing line break through and any length (a 500 on PostgreSQL above the
    column's 255 characters); now 1 to 255 word characters, else 400 ProcessGraphIdInvalid."""
    a, _, secrets = world
    body, headers = json.dumps(GRAPH).encode(), {"Content-Type": "application/json"}
    assert a.send("PUT", f"{API}/process_graphs/{'u' * 255}", body, headers)[0] == 200
    for bad in ("u" * 256, "name%0A", "name%0D%0A"):
        answer = a.send("PUT", f"{API}/process_graphs/{bad}", body, headers)
        assert problem(answer, secrets) is None and (answer[0], answer[2]["code"]) == (400, "ProcessGraphIdInvalid")
        assert "at most 255" in answer[2]["message"]
        assert a.send("GET", f"{API}/process_graphs/{bad}")[2]["code"] == "ProcessGraphNotFound"
