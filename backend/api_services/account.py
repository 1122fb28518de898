"""The backend's users, logins and account documents (apicore.services.AccountService)."""

from __future__ import annotations

from apicore import errors
from backend.services import Services
from backend.storage.models import User


class BackendAccount:
    def __init__(self, parts: Services):
        self.parts = parts

    def authenticate(self, authorization: str | None) -> User | None:
        return self.parts.authenticator.user_from_header(authorization)

    def basic_login(self, name: str, password: str) -> dict:
        user = self.parts.users.check_password(name, password)
        if user is None:
            raise errors.CredentialsInvalid("Wrong user name or password.")
        signer = self.parts.authenticator.basic
        return {"access_token": signer.issue(user.user_id), "expires_in": signer.ttl}

    def oidc_providers(self) -> list[dict]:
        return [provider.model_dump(exclude={"audience"}, exclude_none=True)
                for provider in self.parts.settings.oidc_providers]

    def me(self, caller: User, root: str) -> dict:
        return {
            "user_id": caller.user_id,
            "name": caller.name,
            "budget": self.parts.ledger.balance(caller.user_id),
            "default_plan": self.parts.settings.plans[0].name,
            "links": [{"rel": "related", "href": f"{root}/process_graphs", "title": "User-defined processes"}],
        }
