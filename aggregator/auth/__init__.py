"""Who the user is at the aggregator, and what to send each backend on their behalf.

    auth = build_auth(settings, db, federation)       # once, in create_app
    caller = auth.authenticate(request.headers.get("Authorization"))   # FederatedCaller | None
    caller.headers_for("b1")       # {"Authorization": ...} or None (caller.missing_reason("b1"))
    auth.basic_login(name, password)                   # GET /credentials/basic

    caller.py         FederatedCaller, per-backend Resolution, BackendCredentialsMissing
    authenticator.py  FederationAuth: header parsing, basic login, OIDC listing
    oidc.py           validation at the aggregator; pass-through to backends trusting the same issuer
    directory.py      which issuers each backend trusts, JWT conformance (cached per backend)
    basic.py          the basic-credential exchange with every backend
    tokens.py         the aggregator's stateless, signed token carrying the backends' tokens
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aggregator.auth.authenticator import FederationAuth
from aggregator.auth.caller import BackendCredentialsMissing, FederatedCaller, Resolution
from aggregator.auth.directory import BackendAuthDirectory
from aggregator.auth.oidc import FederationOidc
from aggregator.auth.tokens import FederationTokenSigner
from backend.storage.users import UserStore

if TYPE_CHECKING:
    from aggregator.federation.wiring import Federation
    from aggregator.settings import AggregatorSettings
    from backend.storage.db import Database

__all__ = ["BackendCredentialsMissing", "FederatedCaller", "FederationAuth", "Resolution", "build_auth"]


def build_auth(settings: "AggregatorSettings", db: "Database", federation: "Federation", *,
               token_ttl: int = 86400, jwks_ttl: int = 3600, discovery_ttl: float = 300.0,
               login_deadline: float | None = None) -> FederationAuth:
    """The aggregator's authentication from its settings (secret key: configured, else generated once
    into the data dir, as the backend does). ``login_deadline``: how long a basic login waits for the
    backends (default: the fan-out deadline, at least 5 s: each backend verifies an argon2 hash, 0.5 s
    measured on this busy 2-core machine, and a login happens once a day, not once a request)."""
    from backend.services import secret_key  # light: builds nothing of the engine at import

    return FederationAuth(
        users=UserStore(db),
        signer=FederationTokenSigner(secret_key(settings), token_ttl),
        oidc=FederationOidc(settings.oidc_providers, jwks_ttl),
        directory=BackendAuthDirectory(federation.upstreams, ttl=discovery_ttl),
        federation=federation,
        login_deadline=max(settings.fanout_deadline, 5.0) if login_deadline is None else login_deadline)
