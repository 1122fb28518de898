"""The backend's capabilities fields and health check (apicore.services.DiscoveryService)."""

from __future__ import annotations

import logging

from sqlalchemy import text

from backend import __version__
from backend.services import Services
from backend.storage.db import UNAVAILABLE

log = logging.getLogger(__name__)


class BackendDiscovery:
    def __init__(self, parts: Services):
        self.parts = parts

    def capabilities(self) -> dict:
        settings = self.parts.settings
        return {
            "id": settings.backend_id, "title": settings.title, "description": settings.description,
            "backend_version": __version__,
            "billing": {"currency": "credits", "default_plan": settings.plans[0].name,
                        "plans": [plan.public() for plan in settings.plans]},
        }

    def capabilities_version(self) -> int:
        return 0  # settings are read once at start: the document never changes in this process

    def health(self) -> dict:
        """``status`` ok, or error (then the view answers 503) while the database cannot be reached."""
        try:
            with self.parts.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except UNAVAILABLE as exc:
            log.warning("health check: database unreachable: %s", str(exc).splitlines()[0] if str(exc) else exc)
            return {"status": "error", "backend_version": __version__, "database": "unreachable"}
        return {"status": "ok", "backend_version": __version__, "database": "ok"}
