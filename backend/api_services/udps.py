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
        return self.parts.udps.get(caller.user_id, process_id)

    def put(self, caller: User, process_id: str, spec: dict) -> None:
        self.parts.udps.put(caller.user_id, process_id, spec)

    def delete(self, caller: User, process_id: str) -> bool:
        return self.parts.udps.delete(caller.user_id, process_id)
