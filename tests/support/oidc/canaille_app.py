"""The Canaille app of the test provider: configuration, the one client, the test-only user route.

Canaille (https://canaille.readthedocs.io, the identity server ``pytest-iam`` wraps)
runs with an in-memory database and one RSA signing key made at start-up. It keeps its
authorization server and database backend in module globals: one app per process.

Imports Canaille: only needed where the server runs.
"""

from __future__ import annotations

import datetime
import os
import secrets
from typing import Any

from canaille import create_app
from canaille.app import models
from canaille.backends import Backend
from flask import Blueprint, Flask, jsonify, request
from joserfc.jwk import RSAKey

from .authorization_patches import (
    allow_client_secret_post_for_client_credentials,
    install_jwt_access_tokens,
)
from .client import CALLBACK_PATH, DEFAULT_SCOPES, HOST, USERS_ROUTE, OidcTestServer


def build_app(
    port: int,
    *,
    client_id: str,
    client_secret: str,
    access_token_lifetime: int,
    verbose: bool,
) -> tuple[Flask, OidcTestServer]:
    """The configured Canaille app for ``http://127.0.0.1:port``, and the handle describing it."""
    issuer = f"http://{HOST}:{port}"
    redirect_uri = issuer + CALLBACK_PATH
    key = RSAKey.generate_key(2048, auto_kid=True)
    app = create_app(
        config=_canaille_config(port, key.as_dict(private=True), verbose),
        env_prefix="OIDC_TEST_SERVER_CANAILLE_",
    )
    install_jwt_access_tokens(issuer, key, access_token_lifetime)
    allow_client_secret_post_for_client_credentials()
    _add_testing_routes(app)
    with app.app_context():
        _register_client(issuer, redirect_uri, client_id, client_secret)
    info = OidcTestServer(
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        pid=os.getpid(),
    )
    return app, info


def _canaille_config(port: int, rsa_jwk: dict, verbose: bool) -> dict[str, Any]:
    handler = (
        {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "default"}
        if verbose
        else {"class": "logging.NullHandler"}
    )
    return {
        # TESTING keeps Canaille's optional SQL/SCIM/Hypercorn settings off.
        "TESTING": True,
        "SECRET_KEY": secrets.token_hex(32),
        "WTF_CSRF_ENABLED": False,
        "PREFERRED_URL_SCHEME": "http",
        # Canaille builds the issuer from SERVER_NAME, and redirects (GET) or
        # refuses (POST) requests that are sent to any other host name.
        "SERVER_NAME": f"{HOST}:{port}",
        "CANAILLE": {
            "NAME": "openEO test identity provider",
            "DATABASE": "memory",
            "JAVASCRIPT": False,
            "HTMX": False,
            "CAPTCHA_ENABLED": False,
            "ENABLE_PASSWORD_RECOVERY": False,
            "ACL": {"DEFAULT": {"PERMISSIONS": ["edit_self", "use_oidc"]}},
            # A dict here makes Canaille use dictConfig on its own logger only,
            # instead of changing the root logger's level.
            "LOGGING": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"default": {"format": "[oidc-test-server] %(levelname)s %(message)s"}},
                "handlers": {"canaille": handler},
                "loggers": {
                    "canaille": {
                        "level": "DEBUG" if verbose else "WARNING",
                        "handlers": ["canaille"],
                        "propagate": False,
                    }
                },
            },
        },
        "CANAILLE_OIDC": {
            "ACTIVE_JWKS": [rsa_jwk],
            "DYNAMIC_CLIENT_REGISTRATION_OPEN": False,
        },
    }


def _register_client(issuer: str, redirect_uri: str, client_id: str, client_secret: str) -> None:
    client = models.Client(
        client_id=client_id,
        client_secret=client_secret,
        client_id_issued_at=datetime.datetime.now(datetime.timezone.utc),
        client_name="openEO test client",
        # a client_uri in TRUSTED_DOMAINS (127.0.0.1) skips the consent page
        client_uri=issuer,
        redirect_uris=[redirect_uri],
        post_logout_redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        response_types=["code"],
        scope=DEFAULT_SCOPES,
        token_endpoint_auth_method="client_secret_post",
        # Canaille's model default is not applied here; without it the ID
        # token is signed with the "most secure" RSA algorithm, RS512.
        id_token_signed_response_alg="RS256",
    )
    Backend.instance.save(client)
    client.audience = [client]
    Backend.instance.save(client)


def _add_testing_routes(app: Flask) -> None:
    """``POST /_testing/users``: create a user (or reset its password), for tests in another process."""
    bp = Blueprint("oidc_testing", __name__)

    @bp.post(USERS_ROUTE)
    def upsert_user():
        data = request.get_json(force=True)
        username = data["username"]
        password = data["password"]
        name = data.get("name") or username.replace(".", " ").title()
        email = data.get("email") or f"{username}@example.org"
        user = Backend.instance.get(models.User, user_name=username)
        created = user is None
        if created:
            user = models.User(
                user_name=username,
                formatted_name=name,
                given_name=name.split(" ")[0],
                family_name=name.split(" ")[-1],
                display_name=username,
                emails=[email],
                password=password,
            )
            Backend.instance.save(user)
        else:
            Backend.instance.set_user_password(user, password)
        return jsonify({"username": username, "sub": username, "created": created})

    app.register_blueprint(bp)
