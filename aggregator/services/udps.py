"""The users' user-defined processes, stored in the aggregator's database (apicore.services.UdpService):
they work with every backend down. The backend that runs a graph using them gets them then
(aggregator/services/processing.py)."""

from __future__ import annotations

from aggregator.auth import FederatedCaller
from aggregator.parts import AggregatorParts


class FederationUdps:
    def __init__(self, parts: AggregatorParts):
        self.parts = parts

    def listing(self, caller: FederatedCaller, root: str) -> dict:
        return {"processes": self.parts.udps.list(caller.user_id)}

    def get(self, caller: FederatedCaller, process_id: str) -> dict | None:
        return self.parts.udps.get(caller.user_id, process_id)

    def put(self, caller: FederatedCaller, process_id: str, spec: dict) -> None:
        self.parts.udps.put(caller.user_id, process_id, spec)

    def delete(self, caller: FederatedCaller, process_id: str) -> bool:
        return self.parts.udps.delete(caller.user_id, process_id)
