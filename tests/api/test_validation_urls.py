"""POST /validation reports URL arguments the fetch policy would refuse, without fetching or resolving them."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from backend.app import create_app
from backend.settings import load_settings
from tests.conftest import LiveServer

ALLOWED = ["stac.allowed.test", "*.example.org", "127.0.0.1"]  # .test names never resolve


def node(process_id, result=False, **arguments):
    return {"process_id": process_id, "arguments": arguments, **({"result": True} if result else {})}


class Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = load_settings(data_dir=tmp_path_factory.mktemp("data"), demo_catalog=False,
                             fetch_allowed_hosts=ALLOWED)
    live = LiveServer(create_app(settings))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def www():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def lookups(monkeypatch):
    """Host names resolved in this process (the server runs in a thread of it)."""
    names: list[str] = []
    real = socket.getaddrinfo

    def spy(host, *args, **kwargs):
        names.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    Recorder.hits.clear()
    return names


def validate(server, graph) -> list[dict]:
    response = requests.post(f"{server.url}/validation", json={"process_graph": graph},
                             headers=server.auth_headers())
    assert response.status_code == 200, response.text
    return response.json()["errors"]


def load_stac(url):
    return {"load": node("load_stac", url=url),
            "save": node("save_result", data={"from_node": "load"}, format="GTiff", result=True)}


def test_load_stac_host_not_allowed(server, lookups):
    problems = validate(server, load_stac("https://stac.elsewhere.test/v1/collections/s2"))
    assert [(p["id"], p["code"]) for p in problems] == [("load", "ProcessParameterInvalid")]
    message = problems[0]["message"]
    assert message.startswith("Node 'load': The value passed for parameter 'url' in process 'load_stac' is invalid")
    assert "reading from host 'stac.elsewhere.test' is not allowed" in message
    assert "fetch_allowed_hosts" in message and "OPENEO_BACKEND_FETCH_ALLOWED_HOSTS" in message
    assert "currently: stac.allowed.test, *.example.org, 127.0.0.1" in message
    assert "stac.elsewhere.test" not in lookups  # refused without a DNS lookup


def test_allowed_urls_are_neither_fetched_nor_resolved(server, www, lookups):
    for url in ("https://stac.allowed.test/collections/s2",  # exact name: would not even resolve
                "https://data.example.org/catalog.json",      # wildcard
                f"{www}/collection.json",                      # an allowed IP with a live server behind it
                f"{server.url}/collections/x"):                # this backend's own API root (loopback)
        assert validate(server, load_stac(url)) == [], url
    assert Recorder.hits == []
    assert not {"stac.allowed.test", "data.example.org"} & set(lookups)


def test_scheme_refused_by_the_schema_is_reported_once(server, lookups):
    problems = validate(server, load_stac("file:///etc/passwd"))
    assert [(p["id"], p["code"]) for p in problems] == [("load", "ProcessParameterInvalid")]


def test_aggregate_spatial_geometries_url(server, lookups):
    graph = {"load": node("load_stac", url="https://stac.allowed.test/collections/s2"),
             "agg": node("aggregate_spatial", data={"from_node": "load"}, geometries="https://evil.test/fields.json",
                         reducer={"process_graph": {"m": node("mean", data={"from_parameter": "data"}, result=True)}}),
             "save": node("save_result", data={"from_node": "agg"}, format="JSON", result=True)}
    problems = [p for p in validate(server, graph) if p["id"] == "agg"]
    assert {p["code"] for p in problems} == {"ProcessParameterInvalid"}
    hosts = [p["message"] for p in problems if "host 'evil.test' is not allowed" in p["message"]]
    assert len(hosts) == 1 and "parameter 'geometries' in process 'aggregate_spatial'" in hosts[0]
    assert "fetch_allowed_hosts" in hosts[0]
    assert "evil.test" not in lookups


def test_load_url_host_not_allowed(server, lookups):
    if "load_url" not in {p["id"] for p in requests.get(f"{server.url}/processes").json()["processes"]}:
        pytest.skip("this backend does not offer load_url")
    graph = {"load": node("load_url", url="https://files.elsewhere.test/fields.geojson", format="GeoJSON"),
             "save": node("save_result", data={"from_node": "load"}, format="JSON", result=True)}
    problems = validate(server, graph)
    assert [(p["id"], p["code"]) for p in problems] == [("load", "ProcessParameterInvalid")]
    assert "parameter 'url' in process 'load_url'" in problems[0]["message"]
    assert "host 'files.elsewhere.test' is not allowed" in problems[0]["message"]
    assert "fetch_allowed_hosts" in problems[0]["message"]
    assert "files.elsewhere.test" not in lookups
