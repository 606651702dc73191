"""`UserStore` on the PostgreSQL database that holds the history (`database_url`), shared by every replica.

The tables come from the history schema's migrations (`chat.postgres_migrations`), so whichever store
connects first brings the database up to date. Every change to a key or a user is seen by every replica
at its next read (within the key cache period of the API-key authenticator).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from genai_chatbot.auth.principal import Role
from genai_chatbot.auth.user_rows import USER_COLUMNS, update_user_statement, user_changes, user_values
from genai_chatbot.auth.users import (
    ApiKeyRecord,
    DuplicateUserError,
    UnknownKeyError,
    UnknownUserError,
    UserAccount,
    check_own_keys,
    check_role,
    key_values,
)
from genai_chatbot.chat.postgres_db import PostgresDatabase
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.usage_sql import limits_from_json

_KEY_COLUMNS = "prefix, secret_sha256, user_name, created_at, expires_at, revoked_at, last_used_at"


def _user(row: dict[str, Any], created_at: str = "created_at") -> UserAccount:
    return UserAccount(
        name=row["name"],
        role=check_role(row["role"]),
        groups=tuple(json.loads(row["groups_json"])),
        disabled=bool(row["disabled"]),
        created_at=row[created_at],
        limits=limits_from_json(row["limits_json"]),
    )


def _key(row: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        prefix=row["prefix"],
        secret_hash=row["secret_sha256"],
        user=row["user_name"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


async def _get_user(db: AsyncConnection[DictRow], name: str) -> UserAccount | None:
    row = await (await db.execute(f"SELECT {USER_COLUMNS} FROM users WHERE name = %s", (name,))).fetchone()
    return _user(row) if row else None


class PostgresUserStore:
    """`UserStore` on a PostgreSQL database; connects at `open()` or at its first call."""

    def __init__(self, url: str) -> None:
        self._database = PostgresDatabase(url)

    def __repr__(self) -> str:
        return "PostgresUserStore(<database_url>)"

    async def open(self) -> None:
        """Connect and apply the migrations the database lacks."""
        await self._database.open()

    async def add_user(self, user: UserAccount) -> None:
        try:
            async with self._database.connection() as db:
                await db.execute(
                    f"INSERT INTO users ({USER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                    user_values(user),
                )
        except psycopg.errors.UniqueViolation:
            raise DuplicateUserError(user.name) from None

    async def get_user(self, name: str) -> UserAccount | None:
        async with self._database.connection() as db:
            return await _get_user(db, name)

    async def list_users(self) -> list[UserAccount]:
        async with self._database.connection() as db:
            rows = await (await db.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY name")).fetchall()
        return [_user(row) for row in rows]

    async def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        groups: tuple[str, ...] | None = None,
        disabled: bool | None = None,
        limits: Limits | None = None,
    ) -> UserAccount:
        changes = user_changes(role, groups, disabled, limits)
        async with self._database.connection() as db, db.transaction():
            if changes:
                await db.execute(update_user_statement(changes, "%s"), (*changes.values(), name))
            user = await _get_user(db, name)
        if user is None:
            raise UnknownUserError(name)
        return user

    async def add_key(self, key: ApiKeyRecord) -> None:
        async with self._database.connection() as db, db.transaction():
            # FOR SHARE: the user cannot disappear between this check and the insert.
            found = await db.execute("SELECT 1 FROM users WHERE name = %s FOR SHARE", (key.user,))
            if await found.fetchone() is None:
                raise UnknownUserError(key.user)
            await db.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)", key_values(key)
            )

    async def list_keys(self, user: str) -> list[ApiKeyRecord]:
        async with self._database.connection() as db:
            if await _get_user(db, user) is None:
                raise UnknownUserError(user)
            cursor = await db.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE user_name = %s ORDER BY created_at, prefix", (user,)
            )
            rows = await cursor.fetchall()
        return [_key(row) for row in rows]

    async def find_key(self, prefix: str) -> tuple[ApiKeyRecord, UserAccount] | None:
        async with self._database.connection() as db:
            cursor = await db.execute(
                "SELECT prefix, secret_sha256, user_name, api_keys.created_at AS created_at, expires_at, "
                "revoked_at, last_used_at, name, role, groups_json, disabled, limits_json, "
                "users.created_at AS user_created_at "
                "FROM api_keys JOIN users ON users.name = api_keys.user_name WHERE prefix = %s",
                (prefix,),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        return _key(row), _user(row, created_at="user_created_at")

    async def revoke_key(self, prefix: str, at: float) -> ApiKeyRecord:
        async with self._database.connection() as db:
            # COALESCE keeps the first revocation time; RETURNING reads the row in the same statement.
            cursor = await db.execute(
                f"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %s) WHERE prefix = %s RETURNING {_KEY_COLUMNS}",
                (at, prefix),
            )
            row = await cursor.fetchone()
        if row is None:
            raise UnknownKeyError(prefix)
        return _key(row)

    async def touch_key(self, prefix: str, at: float) -> None:
        async with self._database.connection() as db:
            await db.execute("UPDATE api_keys SET last_used_at = %s WHERE prefix = %s", (at, prefix))

    async def import_user(self, user: UserAccount, keys: Sequence[ApiKeyRecord]) -> tuple[bool, int]:
        check_own_keys(user, keys)
        async with self._database.connection() as db, db.transaction():
            added = await db.execute(
                f"INSERT INTO users ({USER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                user_values(user),
            )
            keys_added = 0
            for key in keys:
                inserted = await db.execute(
                    f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (prefix) DO NOTHING",
                    key_values(key),
                )
                keys_added += inserted.rowcount
        return added.rowcount > 0, keys_added

    async def close(self) -> None:
        await self._database.close()
