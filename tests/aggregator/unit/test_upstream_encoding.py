"""Upstream reads compressed answers: our own backend gzips its JSON (apicore.frozen_json.gzip_response)
whenever the client accepts it, and requests always sends ``Accept-Encoding: gzip, deflate``."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aggregator.federation.errors import BackendResponseInvalid
from aggregator.federation.upstream import Timeouts, Upstream
from tests.aggregator.conftest import config_for


class _GzipServer:
    def __init__(self, document: bytes):
        body = gzip.compress(document)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/openeo/1.2/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_gzipped_json_is_decoded():
    document = {"api_version": "1.2.0", "endpoints": [{"path": f"/p{i}", "methods": ["GET"]} for i in range(500)]}
    with _GzipServer(json.dumps(document).encode()) as server:
        assert Upstream(config_for("gz", server.url), timeouts=Timeouts(metadata=2)).get_json("") == document


def test_the_size_limit_counts_decompressed_bytes():
    with _GzipServer(json.dumps({"data": "x" * 200_000}).encode()) as server:  # ~200 KB from < 1 KB on the wire
        client = Upstream(config_for("gz", server.url), timeouts=Timeouts(metadata=2), max_body_bytes=100_000)
        with pytest.raises(BackendResponseInvalid, match="body larger than 100000 bytes"):
            client.get_json("")
