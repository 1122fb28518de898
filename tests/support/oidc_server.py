"""A real OpenID Connect provider on localhost, for tests.

The provider is Canaille (https://canaille.readthedocs.io), the identity server that
``pytest-iam`` wraps, run with an in-memory database and one RSA signing key made
at start-up.  On top of Canaille the test provider:

* registers one confidential client that may use the ``authorization_code``,
  ``refresh_token`` and ``client_credentials`` grants (client authentication:
  ``client_secret_post``, which is what the openEO Python client sends);
* makes every access token a JWT in the RFC 9068 profile, signed with the key
  published at ``jwks_uri`` (see ``oidc/authorization_patches.py``);
* adds a small test-only route ``POST /_testing/users`` that creates (or resets the
  password of) a user, so that tests in another process can have users.

Use it from tests::

    with start_oidc_server() as oidc:          # or the ``oidc_server`` fixture
        token = oidc.client_credentials_token()
        tokens = oidc.user_token("alice")      # real login form, authorization code
        fresh = oidc.refresh(tokens["refresh_token"])

or as a separate process (e.g. for the conformance runner)::

    python tests/support/oidc_server.py --port 8555
    python -m tests.support.oidc_server --port 8555   # needs tests/__init__.py

which prints one JSON line (issuer, client_id, client_secret, ...) on stdout and
serves until it is killed.

Only one server can run *inside* a given process (``in_process=True``): Canaille
keeps its authorization server and database backend in module globals.  The default
mode runs the server in a child process, which has no such limit.

This module is the public face; the parts live in ``tests/support/oidc/``: ``client``
(the handle), ``login`` (authorization-code login), ``launcher`` (child process or
thread), ``canaille_app``, ``authorization_patches``, ``wsgi_server`` and ``cli``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

if not __package__:  # run or loaded by file path: `tests` must be this checkout's, not Canaille's
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [str(_HERE.parents[1]), *(p for p in sys.path if Path(p).resolve() != _HERE)]

from tests.support.oidc.client import OidcTestServer  # noqa: E402
from tests.support.oidc.errors import OidcTestServerError  # noqa: E402
from tests.support.oidc.launcher import start_oidc_server  # noqa: E402

__all__ = [
    "OidcTestServer",
    "OidcTestServerError",
    "start_oidc_server",
    "oidc_server",
]

try:
    # The command line (``__main__``) needs no pytest, and starts ~0.15 s faster.
    pytest = None if __name__ == "__main__" else __import__("pytest")
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def oidc_server() -> Iterator[OidcTestServer]:
        """Session-wide OIDC provider (child process) on a free localhost port."""
        with start_oidc_server() as server:
            yield server


if __name__ == "__main__":
    from tests.support.oidc.cli import main

    sys.exit(main())
