"""Three fake openEO backends for bench_federation.py, in a process of their own (so that the benchmark's
load generator and the backends do not share one GIL).

Each serves 300 full collection documents (150 shared by all three) and the official process specs
(bench_merging.py's documents: the merge has real work and conflicts), plus what both aggregators ask of a
backend: capabilities, /credentials/basic (any credentials: a fixed token), /credentials/oidc (none),
/file_formats, /me, /jobs (two jobs) and POST /result (a small JSON answer). Documents are serialised once.

    python tests/benchmarks/federation_fakes.py      # prints {"b1": port, "b2": port, "b3": port}, then
                                                     # reads commands on stdin, answers "ok" per line:
    b3 behaviour hang|html_500|ok                    #   FakeBackend behaviours (tests/support/fake_backends.py)
    b3 stop | b3 start                               #   refuse connections / serve again on the same port
    b3 delay 0.3                                     #   seconds before every answer
    b3 reset                                         #   ok, no delay, serving (hanging handlers released)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.benchmarks.bench_merging import listings, process_listings  # noqa: E402
from tests.support.fake_backends import FakeBackend, capabilities  # noqa: E402

BACKENDS = ("b1", "b2", "b3")
TOKEN_LIFETIME = 86400


class FrozenFakeBackend(FakeBackend):
    """A FakeBackend whose documents are serialised once (the fake should cost little next to the
    aggregators), answering every method on a document path with that document."""

    def __init__(self, backend_id: str, documents: dict):
        super().__init__(backend_id)
        self.documents.update(documents)
        self._frozen = {path: json.dumps(document).encode() for path, document in self.documents.items()}

    def answer(self, method, target, headers, body, client_port):
        path = target.split("?", 1)[0]
        path = path[len("/openeo/1.2/"):] if path.startswith("/openeo/1.2/") else path.lstrip("/")
        frozen = self._frozen.get(path.rstrip("/"))
        if frozen is None or self.behaviour != "ok":
            return super().answer(method, target, headers, body, client_port)
        if self.delay:
            import time

            time.sleep(self.delay)
        return 200, [("Content-Type", "application/json")], frozen

    def reset(self) -> None:
        if self.behaviour == "hang":  # let the hanging handlers go (they wait for the stop event)
            self.stop()
        self.behaviour, self.delay = "ok", 0.0
        if self._server is None:
            self.start()


def documents(backend_id: str, collections: dict, processes: dict) -> dict:
    caps = capabilities(backend_id)
    caps["endpoints"] = [{"path": path, "methods": methods} for path, methods in [
        ("/collections", ["GET"]), ("/collections/{collection_id}", ["GET"]), ("/processes", ["GET"]),
        ("/file_formats", ["GET"]), ("/credentials/basic", ["GET"]), ("/me", ["GET"]), ("/result", ["POST"]),
        ("/jobs", ["GET", "POST"])]]
    return {
        "": caps,
        "collections": collections,
        "processes": processes,
        "credentials/basic": {"access_token": f"token-of-{backend_id}", "expires_in": TOKEN_LIFETIME},
        "credentials/oidc": {"providers": []},
        "me": {"user_id": "bench-user"},
        "jobs": {"jobs": [{"id": f"{backend_id}-job-{i}", "status": "finished", "created": "2026-01-01T00:00:00Z",
                           "title": f"job {i}"} for i in range(2)], "links": []},
        "result": {"result": 42, "backend": backend_id},
        "udf_runtimes": {},
    }


def main() -> int:
    collections, processes = listings(light=False), process_listings()
    backends = {bid: FrozenFakeBackend(bid, documents(bid, collections[bid], processes[bid])) for bid in BACKENDS}
    print(json.dumps({bid: backend.port for bid, backend in backends.items()}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            backend, command, *rest = words
            fake = backends[backend]
            if command == "behaviour":
                fake.behaviour = rest[0]
            elif command == "delay":
                fake.delay = float(rest[0])
            elif command == "stop":
                fake.stop()
            elif command == "start":
                fake.start()
            elif command == "reset":
                fake.reset()
            else:
                raise ValueError(f"unknown command {command!r}")
            print("ok", flush=True)
        except Exception as error:  # noqa: BLE001 - reported to the benchmark, which stops
            print(f"error {error}", flush=True)
    for fake in backends.values():
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
