"""Admin access: an authenticated caller whose name or user id is listed in the ``admins`` setting."""

from __future__ import annotations

from flask import current_app

from aggregator.parts import AggregatorParts
from apicore import errors
from apicore.services import Caller
from apicore.views.context import require_caller


def parts() -> AggregatorParts:
    return current_app.extensions["openeo_aggregator"]


def require_admin() -> Caller:
    """The caller (401 AuthenticationRequired without a login), 403 PermissionsInsufficient if not an admin."""
    caller = require_caller()
    admins = set(parts().settings.admins)
    if caller.name not in admins and caller.user_id not in admins:
        raise errors.PermissionsInsufficient(
            f"User '{caller.name}' is not an administrator of this federation: the operator lists "
            "administrators (names or user ids) in the `admins` setting.")
    return caller
