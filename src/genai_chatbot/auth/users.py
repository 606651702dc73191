"""Users and API keys as records, and the `UserStore` contract every back end implements.

SQLite (the history database) is the first back end; PostgreSQL and DynamoDB follow the same protocol, so
it speaks only in these records and in the errors below, never in rows or SQL. A key is stored as its
public prefix and the SHA-256 of its secret: the clear key exists only in the answer that created it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from genai_chatbot.auth.principal import ROLES, Role
from genai_chatbot.governance.settings import Limits

#: User names: what `sessions.user_id` holds for API-key users. Letters, digits and `._@-`, so an e-mail
#: address works and nothing needs quoting in a shell or a URL.
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
#: Group names as identity providers write them too (Keycloak paths, Entra names with spaces), bounded.
GROUP_NAME = re.compile(r"^[A-Za-z0-9/][A-Za-z0-9 ._@/:-]{0,127}$")


class UserStoreError(Exception):
    """A user or key operation cannot be done; the message says why and what to do."""


class UnknownUserError(UserStoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"There is no user {name!r}; list users with 'genai-chatbot users list'.")


class DuplicateUserError(UserStoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"User {name!r} already exists; pick another name or see 'genai-chatbot users list'.")


class UnknownKeyError(UserStoreError):
    def __init__(self, prefix: str) -> None:
        super().__init__(f"There is no API key with prefix {prefix!r}; see 'genai-chatbot keys list NAME'.")


def check_user_name(name: str) -> str:
    """`name` when it is a valid user name; `UserStoreError` saying what is allowed otherwise."""
    if not USER_NAME.match(name):
        raise UserStoreError(
            f"Invalid user name {name!r}: use 1-128 letters, digits and '._@-', starting with a letter or digit."
        )
    return name


def check_groups(groups: tuple[str, ...]) -> tuple[str, ...]:
    """`groups` when every name is valid and there are at most 100; `UserStoreError` saying what is allowed."""
    if len(groups) > 100:
        raise UserStoreError(f"A user may be in at most 100 groups, not {len(groups)}.")
    for group in groups:
        if not GROUP_NAME.match(group):
            raise UserStoreError(
                f"Invalid group name {group[:60]!r}: use 1-128 letters, digits, spaces and '._@/:-', starting with "
                "a letter, digit or '/'."
            )
    return groups


def check_role(role: str) -> Role:
    """`role` as a `Role`; `UserStoreError` naming the valid roles otherwise."""
    for known in ROLES:
        if role == known:
            return known
    raise UserStoreError(f"Invalid role {role!r}: use one of {', '.join(ROLES)}.")


@dataclass(frozen=True, slots=True)
class UserAccount:
    """A user of API keys. `name` is the user id that scopes their sessions."""

    name: str
    role: Role = "user"
    groups: tuple[str, ...] = ()
    disabled: bool = False
    created_at: float = field(default_factory=time.time)
    #: The user's own budgets and rate limits (`genai-chatbot users set`); None: none of their own.
    limits: Limits | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One stored key: its public prefix and the SHA-256 hex digest of its secret, never the secret."""

    prefix: str
    secret_hash: str = field(repr=False)
    user: str
    created_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None

    def problem(self, now: float) -> str | None:
        """Why this key no longer signs anyone in (revoked, expired), or None while it is valid."""
        if self.revoked_at is not None:
            return f"API key {self.prefix} was revoked; ask an admin for a new one ('genai-chatbot keys create')."
        if self.expires_at is not None and now >= self.expires_at:
            return f"API key {self.prefix} has expired; ask an admin for a new one ('genai-chatbot keys create')."
        return None


def key_values(key: ApiKeyRecord) -> tuple[object, ...]:
    """A key's fields in the order of the SQL stores' columns (prefix, hash, user, then the four times)."""
    return (key.prefix, key.secret_hash, key.user, key.created_at, key.expires_at, key.revoked_at, key.last_used_at)


def check_own_keys(user: UserAccount, keys: Sequence[ApiKeyRecord]) -> None:
    """`ValueError` when one of `keys` belongs to another user than `user` (`UserStore.import_user`)."""
    for key in keys:
        if key.user != user.name:
            raise ValueError(f"API key {key.prefix} belongs to {key.user!r}, not to {user.name!r}.")


class UserStore(Protocol):
    """Where users and API keys live. Methods raise the `UserStoreError` subclasses above, with the fix."""

    async def add_user(self, user: UserAccount) -> None:
        """Store a new user; `DuplicateUserError` when the name is taken."""
        ...

    async def get_user(self, name: str) -> UserAccount | None: ...

    async def list_users(self) -> list[UserAccount]:
        """Every user, by name."""
        ...

    async def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        groups: tuple[str, ...] | None = None,
        disabled: bool | None = None,
        limits: Limits | None = None,
    ) -> UserAccount:
        """Change the given fields (None leaves one as it is; `Limits()` removes the user's limits); the
        updated user, or `UnknownUserError`."""
        ...

    async def add_key(self, key: ApiKeyRecord) -> None:
        """Store a new key of an existing user; `UnknownUserError` when there is none."""
        ...

    async def list_keys(self, user: str) -> list[ApiKeyRecord]:
        """The user's keys, oldest first, revoked and expired ones included; `UnknownUserError`."""
        ...

    async def find_key(self, prefix: str) -> tuple[ApiKeyRecord, UserAccount] | None:
        """The key with this prefix and its user, in one read: what verifying a key needs."""
        ...

    async def revoke_key(self, prefix: str, at: float) -> ApiKeyRecord:
        """Mark the key revoked at `at` (an already revoked key keeps its first time); `UnknownKeyError`."""
        ...

    async def touch_key(self, prefix: str, at: float) -> None:
        """Record that the key was used at `at` (called at most once per cache period, not per request)."""
        ...

    async def import_user(self, user: UserAccount, keys: Sequence[ApiKeyRecord]) -> tuple[bool, int]:
        """Store a user and their keys exactly as given (timestamps, revocations), in one transaction.

        Whether the user was added (False: a user of that name exists and is kept as it is) and how many of
        `keys` were added (a key whose prefix exists is kept as it is), so importing a file again adds only
        what is missing. Every key must belong to `user` (`ValueError` otherwise).
        """
        ...

    async def close(self) -> None: ...
