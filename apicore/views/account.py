"""Authentication endpoints and the account: /credentials/basic, /credentials/oidc, /me."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from apicore import errors
from apicore.views.context import api, api_root, require_caller

bp = Blueprint("account", __name__)
# Registered only when OIDC providers are configured: the spec requires at least one provider.
oidc_bp = Blueprint("oidc", __name__)


@bp.get("/credentials/basic")
def basic_token():
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        raise errors.AuthenticationRequired(
            "Send your user name and password with HTTP Basic authentication ('Authorization: Basic ...').")
    return jsonify(api().account.basic_login(auth.username, auth.password or ""))


@oidc_bp.get("/credentials/oidc")
def oidc_providers():
    return jsonify({"providers": api().account.oidc_providers()})


@bp.get("/me")
def me():
    return jsonify(api().account.me(require_caller(), api_root()))
