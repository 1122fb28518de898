"""backend.processing.fetching: the allow-list for user-given URLs, against a real local HTTP server."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pydantic
import pystac
import pytest

from apicore import errors
from backend.processing import fetching
from backend.processing.fetching import Fetcher, FetchPolicy, fetch_json, normalize_host_pattern, policy_for
from backend.settings import load_settings

ITEM = {"type": "Feature", "stac_version": "1.0.0", "id": "item-1", "geometry": None, "bbox": None,
        "properties": {"datetime": "2022-06-02T10:00:00Z"}, "links": [], "assets": {"B04": {"href": "./B04.tif"}}}


class Handler(BaseHTTPRequestHandler):
    hits: list[tuple[str, str, str]] = []  # (method, path, Host header)

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}) and "Transfer-Encoding" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        Handler.hits.append(("GET", self.path, self.headers.get("Host")))
        port = self.server.server_port
        if self.path.startswith("/doc.json") or self.path.startswith("/openeo/1.2/doc.json"):
            self._send(200, json.dumps({"hello": "world", "path": self.path}).encode(),
                       {"Content-Type": "application/json"})
        elif self.path == "/item.json":
            self._send(200, json.dumps(ITEM).encode(), {"Content-Type": "application/geo+json"})
        elif self.path == "/big.json":
            self._send(200, b"[" + b"1," * 5000 + b"1]")
        elif self.path == "/chunked-big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(20):
                chunk = b"x" * 1000
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/gzip-bomb":
            self._send(200, gzip.compress(b" " * 200_000), {"Content-Encoding": "gzip"})
        elif self.path == "/redirect-same":
            self._send(302, b"", {"Location": "/doc.json?redirected=1"})
        elif self.path == "/redirect-other-host":
            self._send(302, b"", {"Location": f"http://localhost:{port}/doc.json"})
        elif self.path == "/redirect-loop":
            self._send(302, b"", {"Location": "/redirect-loop"})
        elif self.path == "/slow":
            time.sleep(2)
            self._send(200, b"{}")
        elif self.path == "/not-json":
            self._send(200, b"<html>hi</html>")
        else:
            self._send(404, b"no such document")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Handler.hits.append(("POST", self.path, self.headers.get("Host")))
        self._send(200, json.dumps({"echo": json.loads(body), "type": self.headers.get("Content-Type")}).encode())


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def clear_hits():
    Handler.hits.clear()


def fetcher(*hosts: str, max_bytes: int = 1_000_000, timeout: float = 5.0, own: tuple[str, ...] = ()) -> Fetcher:
    policy = FetchPolicy(allowed_hosts=tuple(normalize_host_pattern(h) for h in hosts), own_roots=own,
                         max_bytes=max_bytes, timeout=timeout)
    return Fetcher(policy, "load_stac", "url")


def refused(call, *words: str) -> str:
    with pytest.raises(errors.ProcessParameterInvalid) as info:
        call()
    message = info.value.message
    assert info.value.status == 400 and "'load_stac'" in message and "'url'" in message
    for word in words:
        assert word in message, message
    return message


# --- allowed --------------------------------------------------------------------------------------


def test_allowed_host_is_read(server):
    assert fetcher("127.0.0.1").fetch_json(f"{server}/doc.json")["hello"] == "world"
    assert Handler.hits == [("GET", "/doc.json", server.removeprefix("http://"))]


def test_same_host_redirect_is_followed(server):
    assert fetcher("127.0.0.1").fetch_json(f"{server}/redirect-same")["path"] == "/doc.json?redirected=1"


def test_exact_name_on_the_list_may_be_private(server):
    port = server.rsplit(":", 1)[1]
    assert fetcher("localhost").fetch_json(f"http://localhost:{port}/doc.json")["hello"] == "world"


def test_connection_goes_to_the_checked_address(server, monkeypatch):
    """The name is resolved once, checked, and that address is used (no second lookup to rebind)."""
    port = int(server.rsplit(":", 1)[1])
    lookups = []
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        lookups.append(host)
        if host == "data.example.test":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert fetcher("data.example.test").fetch_json(f"http://data.example.test:{port}/doc.json")["hello"] == "world"
    assert lookups == ["data.example.test", "127.0.0.1"]  # urllib3 connected to the IP, no second name lookup
    assert Handler.hits[-1][2] == f"data.example.test:{port}"  # but sent the real Host header
    # the same name reached through a wildcard rule may not be private
    refused(lambda: fetcher("*.example.test").fetch_json(f"http://data.example.test:{port}/doc.json"),
            "non-public address 127.0.0.1", "fetch_allowed_hosts")


def test_own_api_root_needs_no_allow_list(server):
    own = fetcher(own=(f"{server}/openeo/1.2",))
    assert own.fetch_json(f"{server}/openeo/1.2/doc.json")["hello"] == "world"
    refused(lambda: own.fetch_json(f"{server}/doc.json"), "not allowed")  # outside the API root
    refused(lambda: own.fetch_json(f"{server}/openeo/1.20/doc.json"), "not allowed")


def test_own_roots_trust_the_host_header_only_on_loopback():
    settings = SimpleNamespace(public_url=None, fetch_allowed_hosts=[], fetch_max_bytes=10, fetch_timeout=1)
    assert fetching.own_roots(settings, "http://127.0.0.1:8080/openeo/1.2") == ("http://127.0.0.1:8080/openeo/1.2",)
    assert fetching.own_roots(settings, "http://169.254.169.254/openeo/1.2") == ()  # a forged Host header
    settings.public_url = "https://openeo.example.org"
    assert fetching.own_roots(settings, "https://openeo.example.org/openeo/1.2") == (
        "https://openeo.example.org/openeo/1.2",)
    context = SimpleNamespace(services=SimpleNamespace(settings=settings),
                              api_root="https://openeo.example.org/openeo/1.2")
    assert policy_for(context).is_own("https://openeo.example.org/openeo/1.2/jobs/x/results?sig=1")
    assert not policy_for(context).is_own("https://evil.example.org/openeo/1.2/jobs/x/results")


def test_stac_io_reads_through_the_policy(server, tmp_path):
    io = fetching.GuardedStacIO(fetcher("127.0.0.1"))
    item = pystac.Item.from_file(f"{server}/item.json", stac_io=io)
    assert item.id == "item-1" and item.assets["B04"].get_absolute_href() == f"{server}/B04.tif"
    local = tmp_path / "item.json"
    local.write_text(json.dumps(ITEM))
    refused(lambda: pystac.Item.from_file(str(local), stac_io=io), "only http:// and https://")
    refused(lambda: pystac.Item.from_file(f"{server}/item.json", stac_io=fetching.GuardedStacIO(fetcher())),
            "not allowed")


def test_stac_api_io_posts_json(server):
    io = fetching.GuardedStacApiIO(fetcher("127.0.0.1"))
    answer = json.loads(io.request(f"{server}/search", method="POST", parameters={"limit": 5}))
    assert answer == {"echo": {"limit": 5}, "type": "application/json"}
    assert json.loads(io.request(f"{server}/doc.json", parameters={"a": "1"}))["path"] == "/doc.json?a=1"


def test_fetch_json_uses_the_settings_of_the_run(server, tmp_path):
    settings = load_settings(data_dir=tmp_path, demo_catalog=False, fetch_allowed_hosts=["127.0.0.1"])
    context = SimpleNamespace(services=SimpleNamespace(settings=settings), api_root="")
    assert fetch_json(f"{server}/doc.json", context)["hello"] == "world"
    with pytest.raises(errors.ProcessParameterInvalid) as info:
        fetch_json(f"{server}/doc.json")  # no run context, nothing configured: nothing remote allowed
    assert "'aggregate_spatial'" in info.value.message and "'geometries'" in info.value.message


# --- refused --------------------------------------------------------------------------------------


def test_denied_host_is_never_contacted(server):
    message = refused(lambda: fetcher("data.example.org").fetch_json(f"{server}/doc.json"),
                      "host '127.0.0.1' is not allowed", "fetch_allowed_hosts", "OPENEO_BACKEND_FETCH_ALLOWED_HOSTS",
                      "data.example.org")
    assert "127.0.0.1" in message
    assert Handler.hits == []


def test_check_url_needs_no_network(monkeypatch):
    """The checks a dry run can make (scheme, host, allow-list) never resolve a name."""
    def no_dns(*args, **kwargs):
        raise AssertionError("resolved a name")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    policy = FetchPolicy(allowed_hosts=("*.example.org",))
    target = policy.check_url(" https://a.example.org/stac?x=1 ")
    assert (target.host, target.port, target.path, target.rule, target.addresses) == (
        "a.example.org", 443, "/stac?x=1", "pattern", ())
    with pytest.raises(fetching.Refused) as info:
        policy.check_url("https://evil.test/item.json")
    assert "host 'evil.test' is not allowed" in str(info.value) and "fetch_allowed_hosts" in str(info.value)


def test_wildcards_match_subdomains_only():
    policy = FetchPolicy(allowed_hosts=("*.example.org",))
    assert policy.host_rule("a.example.org") == "pattern" and policy.host_rule("a.b.example.org") == "pattern"
    assert policy.host_rule("example.org") is None and policy.host_rule("badexample.org") is None
    assert FetchPolicy(allowed_hosts=("*",)).host_rule("anything.net") == "pattern"


@pytest.mark.parametrize("url, words", [
    ("file:///etc/passwd", ["'file://'"]),
    ("/etc/passwd", ["a local path"]),
    ("ftp://127.0.0.1/x.json", ["'ftp://'"]),
    ("s3://bucket/item.json", ["'s3://'"]),
    ("gopher://127.0.0.1:6379/_INFO", ["'gopher://'"]),
    ("http://user:pw@127.0.0.1/doc.json", ["credentials"]),
    ("http:///doc.json", ["no host"]),
    ("http://127.0.0.1:99999/doc.json", ["not a valid URL"]),
    (42, ["is not a URL"]),
])
def test_denied_schemes_and_malformed_urls(url, words):
    refused(lambda: fetcher("*", "127.0.0.1").fetch_json(url), *words)


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "100.64.0.1",
                                  "[::1]", "[fd00::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "2130706433"])
def test_private_addresses_denied_under_wildcards(host):
    refused(lambda: fetcher("*").fetch_json(f"http://{host}:9/latest/meta-data/"), "non-public address")


def test_private_address_by_name_denied_under_wildcard(server):
    port = server.rsplit(":", 1)[1]
    refused(lambda: fetcher("*").fetch_json(f"http://localhost:{port}/doc.json"), "non-public address")
    assert Handler.hits == []


def test_redirect_to_another_host_is_refused(server):
    refused(lambda: fetcher("127.0.0.1", "localhost").fetch_json(f"{server}/redirect-other-host"),
            "redirects to another host (localhost)")


def test_redirect_loop_ends(server):
    refused(lambda: fetcher("127.0.0.1").fetch_json(f"{server}/redirect-loop"), "redirects more than")


@pytest.mark.parametrize("path", ["/big.json", "/chunked-big", "/gzip-bomb"])
def test_size_limit(server, path):
    refused(lambda: fetcher("127.0.0.1", max_bytes=5000).fetch(f"{server}{path}"),
            "larger than the 5,000 bytes", "fetch_max_bytes")
    assert len(fetcher("127.0.0.1", max_bytes=300_000).fetch(f"{server}{path}")) > 5000


def test_timeout(server):
    started = time.monotonic()
    refused(lambda: fetcher("127.0.0.1", timeout=0.5).fetch(f"{server}/slow"), "could not read")
    assert time.monotonic() - started < 1.9


def test_http_errors_and_bad_json_are_clear(server):
    refused(lambda: fetcher("127.0.0.1").fetch_json(f"{server}/missing.json"), "answered HTTP 404",
            "no such document")
    refused(lambda: fetcher("127.0.0.1").fetch_json(f"{server}/not-json"), "is not valid JSON")


def test_connection_refused_is_clear():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    refused(lambda: fetcher("127.0.0.1").fetch_json(f"http://127.0.0.1:{port}/x"), "could not connect")


def test_document_budget(server):
    budget = Fetcher(FetchPolicy(allowed_hosts=("127.0.0.1",)), "load_stac", "url", max_documents=2)
    budget.fetch(f"{server}/doc.json")
    budget.fetch(f"{server}/doc.json")
    refused(lambda: budget.fetch(f"{server}/doc.json"), "more than 2 documents")


# --- settings -------------------------------------------------------------------------------------


def test_settings_normalise_and_check_host_patterns(tmp_path):
    settings = load_settings(data_dir=tmp_path, fetch_allowed_hosts=[" Data.Example.org. ", "*.EXAMPLE.net", "*",
                                                                     "[::1]", "127.0.0.1"])
    assert settings.fetch_allowed_hosts == ["data.example.org", "*.example.net", "*", "::1", "127.0.0.1"]
    assert load_settings(data_dir=tmp_path).fetch_allowed_hosts == []
    for bad in ("https://data.example.org", "data.example.org:443", "data.example.org/stac", "*example.org", ""):
        with pytest.raises(pydantic.ValidationError):
            load_settings(data_dir=tmp_path, fetch_allowed_hosts=[bad])


def test_settings_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENEO_BACKEND_FETCH_ALLOWED_HOSTS", '["stac.example.org"]')
    monkeypatch.setenv("OPENEO_BACKEND_FETCH_MAX_BYTES", "1000")
    settings = load_settings(data_dir=tmp_path)
    assert settings.fetch_allowed_hosts == ["stac.example.org"] and settings.fetch_max_bytes == 1000
    assert FetchPolicy.from_settings(settings).allowed_hosts == ("stac.example.org",)
