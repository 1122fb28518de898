"""The HTTP server of the test provider: a threaded werkzeug server in front of the Canaille app.

The socket is bound first, so that a free port (``port=0``) is known before the app,
whose issuer URL contains the port, is built.

Imports Canaille: only needed where the server runs.
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .canaille_app import build_app
from .client import DEFAULT_ACCESS_TOKEN_LIFETIME, DEFAULT_CLIENT_ID, HOST, OidcTestServer


class _Dispatcher:
    """WSGI app placeholder: lets the socket be bound before the app exists."""

    app: Any = None

    def __call__(self, environ, start_response):
        if self.app is None:  # a request that beats the end of the start-up
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return self.app(environ, start_response)


def _make_http_server(port: int, dispatcher: _Dispatcher, verbose: bool) -> BaseWSGIServer:
    class Handler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            if verbose:
                super().log_request(*args, **kwargs)

    return make_server(HOST, port, dispatcher, threaded=True, request_handler=Handler)


def build_server(
    port: int = 0,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str | None = None,
    access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
    verbose: bool = False,
) -> tuple[BaseWSGIServer, OidcTestServer]:
    """Bind the socket and build the Canaille app; returns (http_server, info), not yet serving."""
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on localhost

    dispatcher = _Dispatcher()
    httpd = _make_http_server(port, dispatcher, verbose)
    try:
        dispatcher.app, info = build_app(
            httpd.server_port,
            client_id=client_id,
            client_secret=client_secret or secrets.token_urlsafe(32),
            access_token_lifetime=access_token_lifetime,
            verbose=verbose,
        )
    except BaseException:
        httpd.server_close()
        raise
    return httpd, info


def start_serving(httpd: BaseWSGIServer) -> threading.Thread:
    """Serve requests in a daemon thread (stop with ``httpd.shutdown()``)."""
    thread = threading.Thread(target=httpd.serve_forever, name="oidc-test-server", daemon=True)
    thread.start()
    return thread
