"""For the backend's own blueprints: its parts (backend/services.py). The request helpers (API root, caller,
JSON body) are the shared views' (apicore/views/context.py)."""

from __future__ import annotations

from flask import current_app

from backend.services import Services


def services() -> Services:
    return current_app.extensions["openeo_backend"]
