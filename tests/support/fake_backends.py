"""Backends that misbehave on purpose, as real servers on 127.0.0.1, for the aggregator's tests.

    with FakeBackend("b1") as backend:        # threaded, keep-alive; backend.url = ".../openeo/1.2/"
        backend.behaviour = "html_500"        # or "ok", "invalid_json", "openeo_error", "hang"
        backend.stop(); backend.start()       # same port: refused while stopped (a flapping backend)
        backend.requests["collections"]       # requests received per API path ("" = capabilities)
    with RefusingPort() as url: ...           # a bound port that does not listen: connection refused
    with HangingServer() as server: ...       # accepts connections, never answers (server.connections)
    with DroppingServer(drops=1) as server:   # closes the first N requests unanswered, then answers JSON
    with TricklingServer(every=0.2) as server: # sends headers, then one body byte every 0.2 s

Fake API paths: "" (capabilities), "collections", "processes", "file_formats", "echo" (the request's
headers, cookies, body and client port), "cookie" (sets one), "big" (a ``big_bytes`` JSON body), "jobs/<id>" (404 openEO).
``delay`` (seconds) slows every answer; ``documents[path]`` replaces a document.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from typing import Any

from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

API = "/openeo/1.2/"
BEHAVIOURS = ("ok", "invalid_json", "html_500", "openeo_error", "hang")


def capabilities(backend_id: str) -> dict:
    return {"api_version": "1.2.0", "backend_version": "fake-1", "stac_version": "1.0.0", "type": "Catalog",
            "id": backend_id, "title": f"Fake {backend_id}", "description": "A fake backend for tests.",
            "endpoints": [{"path": "/collections", "methods": ["GET"]}], "links": []}


class _TrackingServer(ThreadingHTTPServer):
    """Remembers open connections so ``stop`` can cut kept-alive ones too (else they would still answer)."""

    daemon_threads = True

    def __init__(self, address, handler, backend: "FakeBackend"):
        self.open_sockets: set[socket.socket] = set()
        self.backend = backend
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        pass  # clients that gave up (timeouts, closed connections) are what these servers are for


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, like gunicorn's gthread workers (werkzeug's server closes every connection)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.backend.answer(self.command, self.path, self.headers, body,
                                                              self.client_address[1])
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


Answer = tuple[int, list[tuple[str, str]], bytes]


class FakeBackend:
    """A threaded HTTP server playing an openEO backend whose behaviour tests switch at runtime."""

    def __init__(self, backend_id: str = "fake", *, port: int = 0):
        self.backend_id = backend_id
        self.behaviour = "ok"
        self.delay = 0.0
        self.big_bytes = 1024
        self.documents: dict[str, Any] = {
            "": capabilities(backend_id),
            "collections": {"collections": [{"id": f"{backend_id}-C1", "title": "C1"}], "links": []},
            "processes": {"processes": [{"id": "add"}], "links": []},
            "file_formats": {"input": {}, "output": {"GTiff": {"gis_data_types": ["raster"], "parameters": {}}}},
        }
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._release = threading.Event()  # lets hanging handlers go when the server stops
        self._server: _TrackingServer | None = None
        self.port = port
        self.start()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.root + API

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        self._release.clear()
        self._server = _TrackingServer(("127.0.0.1", self.port), _Handler, self)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        """Close the port and every open connection (clients then see 'connection refused')."""
        if self._server is None:
            return
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        for sock in list(self._server.open_sockets):
            _close_quietly(sock)
        self._server = None

    def __enter__(self) -> "FakeBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- answering --

    def answer(self, method: str, target: str, headers, body: bytes, client_port: int) -> Answer:
        full_path = urlsplit(target).path
        path = full_path[len(API):] if full_path.startswith(API) else full_path.lstrip("/")
        path = path.rstrip("/")
        with self._lock:
            self.requests[path] += 1
        if self.delay:
            time.sleep(self.delay)
        behaviour = self.behaviour
        if behaviour == "hang":
            self._release.wait(60)
            return _json({"code": "Internal", "message": "released"}, 503)
        if behaviour == "invalid_json":
            return 200, [("Content-Type", "application/json")], b'{"collections": ['
        if behaviour == "html_500":
            return 500, [("Content-Type", "text/html")], b"<html><body><h1>Internal Server Error</h1></body></html>"
        if behaviour == "openeo_error":
            return _json({"id": "up-1", "code": "Internal", "message": "Something broke upstream.", "links": []}, 500)
        if path == "echo":
            cookies = SimpleCookie(headers.get("Cookie") or "")
            return _json({"headers": dict(headers.items()), "cookies": {k: v.value for k, v in cookies.items()},
                          "method": method, "body": body.decode(), "client_port": client_port})
        if path == "cookie":
            status, response_headers, payload = _json({"set": True})
            return status, response_headers + [("Set-Cookie", f"session=secret-of-{self.backend_id}; Path=/")], payload
        if path == "big":
            return _json({"data": "x" * self.big_bytes})
        if path.startswith("jobs/"):
            return _json({"id": "up-2", "code": "JobNotFound", "links": [],
                          "message": f"The batch job '{path[5:]}' does not exist."}, 404)
        if path in self.documents:
            return _json(self.documents[path])
        return _json({"id": "up-3", "code": "NotFound", "message": "Resource not found.", "links": []}, 404)


def _json(document: Any, status: int = 200) -> Answer:
    return status, [("Content-Type", "application/json")], json.dumps(document).encode()


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class RefusingPort:
    """A port bound on 127.0.0.1 but not listening: every connection is refused at once."""

    def __init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}{API}"

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "RefusingPort":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _RawServer:
    """A listening socket with an accept loop in a thread; subclasses handle each connection."""

    def __init__(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}{API}"
        self.connections = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._sockets.append(conn)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True
        _close_quietly(self._listener)
        with self._lock:
            for conn in self._sockets:
                _close_quietly(conn)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class HangingServer(_RawServer):
    """Accepts connections and never answers (a wedged backend or a black-holing proxy)."""

    def handle(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass


class DroppingServer(_RawServer):
    """Reads each request; closes the first ``drops`` connections without an answer, then answers JSON."""

    def __init__(self, drops: int = 1, document: dict | None = None):
        self.drops = drops
        self.body = json.dumps(document or {"ok": True}).encode()
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            with self._lock:
                drop = self.drops > 0
                self.drops -= drop
            if not drop:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                             b"Content-Length: " + str(len(self.body)).encode() + b"\r\n\r\n" + self.body)
        except OSError:
            pass
        finally:
            _close_quietly(conn)


class TricklingServer(_RawServer):
    """Answers 200 at once, then sends its JSON body one byte every ``every`` seconds (never a read timeout)."""

    def __init__(self, every: float = 0.2, size: int = 10_000):
        self.every = every
        self.body = json.dumps({"data": "x" * size}).encode()
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        try:
            while b"\r\n\r\n" not in conn.recv(65536):
                pass
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: " + str(len(self.body)).encode() + b"\r\n\r\n")
            for index in range(len(self.body)):
                if self._closed:
                    return
                conn.sendall(self.body[index:index + 1])
                time.sleep(self.every)
        except OSError:
            pass
        finally:
            _close_quietly(conn)
