"""The hand-written NDVI script behind a minimal threaded HTTP server: the throughput baseline.

Every POST (any path, body ignored) runs ``ndvi_contenders.handwritten`` (odc-stac + xarray + rioxarray,
Dask's threaded scheduler with ``--threads`` threads) on the catalog given at start and answers the COG.
One process, one thread per connection (``http.server.ThreadingHTTPServer``), HTTP/1.1 keep-alive; no
authentication, accounting or validation: what a user serving their own script would write.

    .venv/bin/python tests/benchmarks/handwritten_server.py --catalog DIR/catalog.json --port 8099
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import ndvi_contenders  # noqa: E402


def handler_for(catalog: str, threads: int, chunk: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # readiness probe
            self._answer(200, b"ok", "text/plain")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            work = Path(tempfile.mkdtemp(prefix="handwritten-"))
            try:
                ndvi_contenders.handwritten(catalog, work / "result.tif", threads, chunk)
                self._answer(200, (work / "result.tif").read_bytes(), "image/tiff")
            except Exception as exc:  # noqa: BLE001 - reported to the client, the server keeps running
                self._answer(500, repr(exc).encode(), "text/plain")
            finally:
                shutil.rmtree(work, ignore_errors=True)

        def _answer(self, status: int, body: bytes, media_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # no access log (the backend's is on; it costs little here)
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=2048)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(args.catalog, args.threads, args.chunk))
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
