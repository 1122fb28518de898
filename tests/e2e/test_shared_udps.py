"""Published user-defined processes through the real openeo client: Alice publishes, anyone reads the
public URL without a token, Bob calls it with that URL as namespace (result and validation), the public
catalogue lists it with its owner and pages, unpublishing withdraws it, and a URL namespace on a host
the fetch policy does not allow is refused before any connection."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openeo
import pytest
import requests
from openeo.api.process import Parameter
from openeo.rest import OpenEoApiError

FAHRENHEIT = {"multiply": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "celsius"}, "y": 1.8}},
              "add": {"process_id": "add", "arguments": {"x": {"from_node": "multiply"}, "y": 32}, "result": True}}


@pytest.fixture
def users(live_server):
    return [live_server.new_user() for _ in range(2)]


def connect(live_server, user) -> openeo.Connection:
    return openeo.connect(live_server.url).authenticate_basic(*user)


def publish(connection, process_id="fahrenheit", public=True):
    return connection.save_user_defined_process(process_id, FAHRENHEIT, parameters=[
        Parameter.number("celsius", description="degrees Celsius")], summary="Celsius to Fahrenheit",
        public=public)


def call(process_id: str, namespace: str, celsius) -> dict:
    return {"f": {"process_id": process_id, "namespace": namespace, "arguments": {"celsius": celsius},
                  "result": True}}


def test_a_published_process_is_public_and_callable_by_url_namespace(live_server, users):
    alice, bob = (connect(live_server, user) for user in users)
    publish(alice)
    own = alice.get("/process_graphs/fahrenheit").json()
    url = next(link["href"] for link in own["links"] if link["rel"] == "canonical")
    assert url.startswith(f"{live_server.url}/public/process_graphs/")

    anonymous = requests.get(url, timeout=30)  # no token
    assert anonymous.status_code == 200 and anonymous.json()["process_graph"] == FAHRENHEIT
    assert anonymous.json()["id"] == "fahrenheit"

    costs = []
    for celsius, fahrenheit in ((100, 212), (-40, -40), (0, 32)):
        response = bob.post("/result", json={"process": {"process_graph": call("fahrenheit", url, celsius)}},
                            expected_status=200)
        assert response.json() == pytest.approx(fahrenheit)
        costs.append(float(response.headers["OpenEO-Costs"]))
    assert bob.validate_process_graph(call("fahrenheit", url, 10)) == []
    problems = bob.validate_process_graph(call("celsius", url, 10))  # the URL names another process
    assert problems and problems[0]["code"] == "ProcessUnsupported" and "id 'celsius'" in problems[0]["message"]

    listed = requests.get(f"{live_server.url}/public/process_graphs", params={"limit": 1000}, timeout=30).json()
    entry = next(p for p in listed["processes"] if p["links"][0]["href"] == url)
    assert (entry["id"], entry["owner"], entry["summary"]) == ("fahrenheit", users[0][0], "Celsius to Fahrenheit")
    assert entry["parameters"][0]["name"] == "celsius" and "process_graph" not in entry
    assert entry["cost_hint"] == {"credits_median": pytest.approx(sorted(costs)[1]), "runs": 3}  # not validations


def test_unpublishing_withdraws_the_url(live_server, users):
    alice, bob = (connect(live_server, user) for user in users)
    publish(alice, "fahrenheit_once")
    url = next(link["href"] for link in alice.get("/process_graphs/fahrenheit_once").json()["links"]
               if link["rel"] == "canonical")
    publish(alice, "fahrenheit_once", public=False)
    gone = requests.get(url, timeout=30)
    assert (gone.status_code, gone.json()["code"]) == (404, "ProcessGraphNotFound")
    with pytest.raises(OpenEoApiError) as raised:
        bob.execute(call("fahrenheit_once", url, 1))
    assert raised.value.code == "ProcessUnsupported"
    assert alice.execute({"f": {"process_id": "fahrenheit_once", "arguments": {"celsius": 0}, "result": True}}) == 32


def test_the_catalogue_pages_through_every_published_process_once(live_server, users):
    alice = connect(live_server, users[0])
    for index in range(5):
        publish(alice, f"paged_{index}")
    publish(alice, "private_one", public=False)
    seen, url = [], f"{live_server.url}/public/process_graphs?limit=2"
    while url:
        page = requests.get(url, timeout=30).json()
        assert len(page["processes"]) <= 2
        seen += [p["id"] for p in page["processes"] if p["owner"] == users[0][0]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert sorted(seen) == [f"paged_{i}" for i in range(5)]
    bad = requests.get(f"{live_server.url}/public/process_graphs", params={"page": "../x"}, timeout=30)
    assert (bad.status_code, bad.json()["code"]) == (400, "BadRequest")


class Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        Counting.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "x", "process_graph": {}}')

    def log_message(self, *args):
        pass


def test_a_url_namespace_on_a_host_not_allowed_is_refused_before_any_connection(live_server, users):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bob = connect(live_server, users[1])
        namespace = f"http://127.0.0.1:{server.server_port}/x"
        with pytest.raises(OpenEoApiError) as raised:
            bob.execute(call("x", namespace, 1))
        assert raised.value.http_status_code == 400 and "not allowed" in raised.value.message
        assert Counting.hits == []
    finally:
        server.shutdown()
        server.server_close()
