"""The federation's admin API, under the API prefix, for users listed in the ``admins`` setting:

    GET    /federation/backends               every backend (configured, registered) and the departed ones
    POST   /federation/backends               self-check and register a backend (refused when a check fails)
    GET    /federation/backends/{id}          one backend (or its departure)
    DELETE /federation/backends/{id}          remove a registered backend
    POST   /federation/backends/{id}/check    run the self-check against a member
    GET    /federation/usage                  the per-backend usage report for partners (JSON or CSV)
    GET    /federation/conflicts              where the backends' descriptions disagree (merge conflicts)

    access.py    who may (401 without login, 403 for other users)
    backends.py  the /federation/backends routes
    usage.py     the /federation/usage route
    conflicts.py the /federation/conflicts route
    errors.py    the admin API's openEO errors
"""

from __future__ import annotations

from flask import Blueprint

from aggregator.admin import backends, conflicts, usage

bp = Blueprint("federation_admin", __name__)
backends.register_routes(bp)
usage.register_routes(bp)
conflicts.register_routes(bp)
