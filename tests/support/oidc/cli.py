"""The test provider's command line: serve until killed, after one JSON line on stdout.

Run it as ``python tests/support/oidc_server.py`` (or ``-m tests.support.oidc_server``).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

from .client import DEFAULT_ACCESS_TOKEN_LIFETIME, DEFAULT_CLIENT_ID
from .wsgi_server import build_server, start_serving


def _watch_parent(parent_pid: int) -> None:
    """--exit-with-parent: no orphaned server when the test process dies without stopping it."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a local OIDC provider (Canaille) for openEO backend tests. "
        "Prints one JSON line (issuer, client_id, client_secret, ...) on stdout, "
        "then serves until killed."
    )
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=None, help="default: random")
    parser.add_argument(
        "--access-token-lifetime", type=int, default=DEFAULT_ACCESS_TOKEN_LIFETIME
    )
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME[:PASSWORD]",
        help="create this user at start-up (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    parser.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    httpd, info = build_server(
        args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        access_token_lifetime=args.access_token_lifetime,
        verbose=args.verbose,
    )
    thread = start_serving(httpd)
    users = {}
    for spec in args.user:
        name, _, password = spec.partition(":")
        users[name] = info.create_user(name, password or None)
    print(json.dumps({**info.as_dict(), "users": users}), flush=True)
    try:
        while thread.is_alive():
            thread.join(1)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.shutdown()
    return 0
