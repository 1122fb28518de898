"""The federation's users, logins and account documents (apicore.services.AccountService): the
aggregator's own authentication (aggregator/auth) and the federation's ledger (aggregator/accounting)."""

from __future__ import annotations

from aggregator.auth import FederatedCaller
from aggregator.parts import AggregatorParts


class FederationAccount:
    def __init__(self, parts: AggregatorParts):
        self.parts = parts

    def authenticate(self, authorization: str | None) -> FederatedCaller | None:
        return self.parts.auth.authenticate(authorization)

    def basic_login(self, name: str, password: str) -> dict:
        """The aggregator's token; ``federation:missing`` lists backends where the same login failed."""
        return self.parts.auth.basic_login(name, password)

    def oidc_providers(self) -> list[dict]:
        return self.parts.auth.oidc_providers()

    def me(self, caller: FederatedCaller, root: str) -> dict:
        """The caller and the federation's balance (``budget``)."""
        return self.parts.accounting.me_document(caller, root)
