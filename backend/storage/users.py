"""User accounts: basic-auth users with argon2 hashes, OIDC users created on first sight (unless an operator
removed the identity's account: then it stays refused until restored)."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.storage.db import Database
from backend.storage.models import RemovedIdentity, User

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the user is unknown keeps the response time independent of the name.
    Made on first use, not at import: a hash costs ~0.5 s, which every importing command would pay."""
    return _hasher.hash("not a real password")


class UserExists(Exception):
    pass


class IdentityRemoved(Exception):
    """The OIDC identity's account was removed by an operator (``openeo-backend users remove``)."""


class UserStore:
    def __init__(self, db: Database):
        self.db = db

    def add(self, name: str, password: str) -> User:
        user = User(name=name, password_hash=_hasher.hash(password))
        try:
            with self.db.session() as session:
                session.add(user)
        except IntegrityError as exc:
            raise UserExists(name) from exc
        return user

    def remove(self, name: str) -> bool:
        """Remove the account; an OIDC account's identity is remembered, so that its tokens are refused."""
        with self.db.session() as session:
            user = session.scalar(select(User).where(User.name == name))
            if user is None:
                return False
            if user.oidc_provider is not None and user.oidc_subject is not None:
                session.merge(RemovedIdentity(oidc_provider=user.oidc_provider, oidc_subject=user.oidc_subject,
                                              name=user.name))
            session.delete(user)
            return True

    def restore(self, name: str) -> bool:
        """Let the OIDC identity of a removed account in again (as a new, empty account)."""
        with self.db.session() as session:
            removed = list(session.scalars(select(RemovedIdentity).where(RemovedIdentity.name == name)))
            for identity in removed:
                session.delete(identity)
            return bool(removed)

    def list(self) -> list[User]:
        with self.db.session() as session:
            return list(session.scalars(select(User).order_by(User.name)))

    def get(self, user_id: str) -> User | None:
        with self.db.session() as session:
            return session.get(User, user_id)

    def check_password(self, name: str, password: str) -> User | None:
        """The user if the password matches, else None."""
        with self.db.session() as session:
            user = session.scalar(select(User).where(User.name == name))
        stored = user.password_hash if user and user.password_hash else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return user if user and user.password_hash else None

    def get_or_create_oidc(self, provider: str, subject: str, display_name: str | None) -> User:
        """The user for an OIDC identity, created on first sight (safe against concurrent first requests)."""
        query = select(User).where(User.oidc_provider == provider, User.oidc_subject == subject)
        with self.db.session() as session:
            user = session.scalar(query)
        if user is not None:
            return user
        with self.db.session() as session:  # only on first sight: no cost for known users
            if session.get(RemovedIdentity, (provider, subject)) is not None:
                raise IdentityRemoved(f"{provider}:{subject}")
        name = f"{provider}:{display_name or subject}"
        try:
            with self.db.session() as session:
                if session.scalar(select(User).where(User.name == name)) is not None:
                    name = f"{provider}:{subject}"
                user = User(name=name, oidc_provider=provider, oidc_subject=subject)
                session.add(user)
            return user
        except IntegrityError:
            with self.db.session() as session:
                return session.scalars(query).one()
