"""The backend's user-defined processes store (apicore.services.UdpService)."""

from __future__ import annotations

from backend.services import Services
from backend.storage.models import User


class BackendUdps:
    def __init__(self, parts: Services):
        self.parts = parts

    def listing(self, caller: User, root: str) -> dict:
        return {"processes": self.parts.udps.list(caller.user_id)}

    def get(self, caller: User, process_id: str) -> dict | None:
        spec = self.parts.udps.get(caller.user_id, process_id)
        if spec is not None and spec.get("public") is True:  # published: link its public URL
            from apicore.views.context import api_root  # the request's root (this is only called by the view)
            from backend.api.public_udps import canonical_link

            spec["links"] = [*(spec.get("links") or []), canonical_link(api_root(), caller.user_id, process_id)]
        return spec

    def put(self, caller: User, process_id: str, spec: dict) -> None:
        self.parts.udps.put(caller.user_id, process_id, spec)

    def delete(self, caller: User, process_id: str) -> bool:
        return self.parts.udps.delete(caller.user_id, process_id)
