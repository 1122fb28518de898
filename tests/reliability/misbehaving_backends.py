"""Backends that misbehave as a real one can, on 127.0.0.1, for the aggregator fault suite.

    with GarbageBackend("G") as garbage:      # capabilities and login answered; every other call: garbage
        garbage.kind = "truncated"             # one of GARBAGE (None: the next kind on every call)
        garbage.served[("truncated", "jobs")]  # calls answered with that garbage, per API path
    with HungApi("H") as hung: ...             # capabilities and login answered (its health probe passes
                                               # now and then), every other call accepted, never answered
    with Flapping(fake_backend, period=0.4):   # stops and starts a FakeBackend on its port every period

The garbage documents are valid in shape where it matters (items with ids, a listing of jobs): whatever
of them reaches an answer of the aggregator is a defect the suite sees, not something a merge drops anyway.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
from collections import Counter
from urllib.parse import urlsplit

from tests.support.fake_backends import API, FakeBackend, _RawServer, capabilities

GARBAGE_COLLECTION = "GARBAGE_COLLECTION"
GARBAGE_PROCESS = "garbage_process"
GARBAGE_JOB = "garbage-job"
# A listing that would be accepted for every path: if any of it shows, garbage got through.
_PLAUSIBLE = json.dumps({
    "collections": [{"stac_version": "1.0.0", "type": "Collection", "id": GARBAGE_COLLECTION, "description": "g",
                     "license": "proprietary", "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]},
                                                          "temporal": {"interval": [[None, None]]}}, "links": []}],
    "processes": [{"id": GARBAGE_PROCESS, "description": "g", "parameters": [], "returns": {"schema": {}}}],
    "jobs": [{"id": GARBAGE_JOB, "status": "finished", "created": "2030-01-01T00:00:00Z", "title": "garbage"}],
    "input": {}, "output": {"GARBAGE_FORMAT": {"gis_data_types": ["raster"], "parameters": {}}},
    "links": []}).encode()

# kind -> (status line, headers, body, bytes of the body sent before the connection is closed)
GARBAGE: dict[str, tuple[str, list[tuple[str, str]], bytes, int | None]] = {
    "invalid_json": ("200 OK", [("Content-Type", "application/json")], _PLAUSIBLE[:-40], None),
    "html_200": ("200 OK", [("Content-Type", "text/html; charset=utf-8")],
                 b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action='/login'>"
                 b"<input name='user'></form></body></html>", None),
    "wrong_content_type": ("200 OK", [("Content-Type", "image/png")], b"\x89PNG\r\n\x1a\n" + bytes(range(256)), None),
    "truncated": ("200 OK", [("Content-Type", "application/json")], _PLAUSIBLE, len(_PLAUSIBLE) // 2),
    "not_gzip": ("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip")], _PLAUSIBLE, None),
    "array": ("200 OK", [("Content-Type", "application/json")], b"[" + _PLAUSIBLE + b"]", None),
    "wrong_shape": ("200 OK", [("Content-Type", "application/json")], json.dumps({
        "collections": GARBAGE_COLLECTION, "processes": 5, "jobs": {"id": GARBAGE_JOB}, "input": 5,
        "output": [GARBAGE_COLLECTION], "links": 5}).encode(), None),
    "proxy_502": ("502 Bad Gateway", [("Content-Type", "text/html")],
                  b"<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>", None),
}


def _read_request(conn: socket.socket) -> tuple[str, str] | None:
    """Method and API path (without the prefix and query) of one request; its body is read and dropped."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    path = urlsplit(target).path
    path = path[len(API):] if path.startswith(API) else path.lstrip("/")
    return method, path.strip("/")


def _send(conn: socket.socket, status: str, headers: list[tuple[str, str]], body: bytes,
          sent: int | None = None) -> None:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    conn.sendall(head.encode("latin-1") + body[:sent])


def _json(document: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    return "200 OK", [("Content-Type", "application/json")], json.dumps(document).encode()


class GarbageBackend(_RawServer):
    """Answers its capabilities and the basic login like a backend (so the federation keeps calling it),
    and every other call with garbage of ``kind`` (None: the kinds in turn), one connection per call."""

    def __init__(self, backend_id: str):
        self.backend_id = backend_id
        self.kind: str | None = None
        self.served: Counter[tuple[str, str]] = Counter()
        self.logins = 0
        self._turn = itertools.cycle(GARBAGE)
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                return
            _, path = request
            if path == "":
                _send(conn, *_json(capabilities(self.backend_id)))
            elif path == "credentials/basic":
                with self._lock:
                    self.logins += 1
                _send(conn, *_json({"access_token": f"token-of-{self.backend_id}", "expires_in": 3600}))
            else:
                with self._lock:
                    kind = self.kind or next(self._turn)
                    self.served[(kind, path)] += 1
                _send(conn, *GARBAGE[kind])
        except OSError:
            pass
        finally:
            _close(conn)


class HungApi(_RawServer):
    """Answers its capabilities (a front page that still works) and the basic login; accepts every other
    call and never answers it."""

    def __init__(self, backend_id: str):
        self.backend_id = backend_id
        self.held: Counter[str] = Counter()
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                return
            _, path = request
            if path == "":
                _send(conn, *_json(capabilities(self.backend_id)))
                return
            if path == "credentials/basic":
                _send(conn, *_json({"access_token": f"token-of-{self.backend_id}", "expires_in": 3600}))
                return
            with self._lock:
                self.held[path] += 1
            while conn.recv(65536):  # until the client gives up (or the server closes)
                pass
        except OSError:
            pass
        finally:
            _close(conn)


class Flapping:
    """Takes ``backend`` down and up again every ``period`` seconds (refused connections while down)."""

    def __init__(self, backend: FakeBackend, period: float):
        self.backend = backend
        self.period = period
        self.flips = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flapping", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            if self.backend.running:
                self.backend.stop()
            else:
                self.backend.start()
            self.flips += 1

    def __enter__(self) -> "Flapping":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        if not self.backend.running:
            self.backend.start()


def _close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
