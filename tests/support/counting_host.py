"""A loopback HTTP server that counts the requests it gets (request-forgery tests: "was this host contacted?")."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Host:
    """A loopback HTTP server: ``routes`` maps a path to bytes (served with Range support) or to
    ("redirect", url); ``hits`` lists every request it received."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0):
        self.routes: dict[str, object] = {}
        self.hits: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):  # GDAL's /vsicurl/ asks for the size first
                self.do_GET(body=False)

            def do_GET(self, body: bool = True):
                host.hits.append(self.path)
                route = host.routes.get(self.path.split("?")[0])
                if isinstance(route, tuple):
                    self.send_response(302)
                    self.send_header("Location", route[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif isinstance(route, bytes):
                    self._bytes(route, body)
                else:
                    self.send_error(404)

            def _bytes(self, data: bytes, body: bool) -> None:
                start, end, status = 0, len(data) - 1, 200
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if match:
                    start, end, status = int(match[1]), min(int(match[2] or end), end), 206
                self.send_response(status)
                self.send_header("Content-Length", str(end - start + 1))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.end_headers()
                try:
                    if body:
                        self.wfile.write(data[start:end + 1])
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_port
        self.url = f"http://{address}:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
