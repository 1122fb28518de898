"""For the backend's own blueprints: its parts (backend/services.py); the request helpers are the shared
views' (apicore/views/context.py)."""

from __future__ import annotations

from flask import current_app

from apicore.views.context import (api_root, frozen, json_body, optional_caller as optional_user,  # noqa: F401
                                   paging_arguments, require_caller as require_user)
from backend.services import Services


def services() -> Services:
    return current_app.extensions["openeo_backend"]
