"""Authentication endpoints and the account: /credentials/basic, /credentials/oidc, /me."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from apicore import errors
from backend.api.context import api_root, require_user, services

bp = Blueprint("account", __name__)
# Registered only when OIDC providers are configured: the spec requires at least one provider.
oidc_bp = Blueprint("oidc", __name__)


@bp.get("/credentials/basic")
def basic_token():
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        raise errors.AuthenticationRequired(
            "Send your user name and password with HTTP Basic authentication ('Authorization: Basic ...').")
    user = services().users.check_password(auth.username, auth.password or "")
    if user is None:
        raise errors.CredentialsInvalid("Wrong user name or password.")
    signer = services().authenticator.basic
    return jsonify({"access_token": signer.issue(user.user_id), "expires_in": signer.ttl})


@oidc_bp.get("/credentials/oidc")
def oidc_providers():
    providers = [provider.model_dump(exclude={"audience"}, exclude_none=True)
                 for provider in services().settings.oidc_providers]
    return jsonify({"providers": providers})


@bp.get("/me")
def me():
    user = require_user()
    svc = services()
    return jsonify({
        "user_id": user.user_id,
        "name": user.name,
        "budget": svc.ledger.balance(user.user_id),
        "default_plan": svc.settings.plans[0].name,
        "links": [{"rel": "related", "href": f"{api_root()}/process_graphs", "title": "User-defined processes"}],
    })
