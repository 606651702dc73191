"""`UserStore` on the SQLite history database (`<data_dir>/chat.sqlite3`), shared by the server and the CLI.

It opens its own connection to the same file; WAL lets the CLI add a user or revoke a key while the server
runs. The tables come from the history store's migrations (`_m004_users_and_api_keys`), so whichever opens
the file first brings it up to date. Every write is a real transaction (`chat.sqlite_tx.transaction`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

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
from genai_chatbot.chat.sqlite_db import SQLiteDatabase
from genai_chatbot.chat.sqlite_store import migrate
from genai_chatbot.chat.sqlite_tx import transaction
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.usage_sql import limits_from_json

T = TypeVar("T")

_KEY_COLUMNS = "prefix, secret_sha256, user_name, created_at, expires_at, revoked_at, last_used_at"
# The same, readable when joined with users (which has its own created_at).
_KEY_SELECT = (
    "prefix, secret_sha256, user_name, api_keys.created_at AS created_at, expires_at, revoked_at, last_used_at"
)


def _user(row: sqlite3.Row) -> UserAccount:
    return UserAccount(
        name=row["name"],
        role=check_role(row["role"]),
        groups=tuple(json.loads(row["groups_json"])),
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        limits=limits_from_json(row["limits_json"]),
    )


def _key(row: sqlite3.Row) -> ApiKeyRecord:
    return ApiKeyRecord(
        prefix=row["prefix"],
        secret_hash=row["secret_sha256"],
        user=row["user_name"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def _get_user(db: sqlite3.Connection, name: str) -> UserAccount | None:
    row = db.execute(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
    return _user(row) if row else None


class SQLiteUserStore:
    """`UserStore` on one SQLite file; calls run in a worker thread, one at a time."""

    def __init__(self, path: Path) -> None:
        self._database = SQLiteDatabase(path)
        migrate(self._database.connection)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._database.run(work)

    async def add_user(self, user: UserAccount) -> None:
        def work(db: sqlite3.Connection) -> None:
            try:
                with transaction(db):
                    db.execute(
                        f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                        user_values(user),
                    )
            except sqlite3.IntegrityError:
                raise DuplicateUserError(user.name) from None

        await self._run(work)

    async def get_user(self, name: str) -> UserAccount | None:
        return await self._run(lambda db: _get_user(db, name))

    async def list_users(self) -> list[UserAccount]:
        def work(db: sqlite3.Connection) -> list[UserAccount]:
            return [_user(row) for row in db.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY name")]

        return await self._run(work)

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

        def work(db: sqlite3.Connection) -> UserAccount:
            with transaction(db):
                if changes:
                    db.execute(update_user_statement(changes, "?"), (*changes.values(), name))
                user = _get_user(db, name)
            if user is None:
                raise UnknownUserError(name)
            return user

        return await self._run(work)

    async def add_key(self, key: ApiKeyRecord) -> None:
        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                if _get_user(db, key.user) is None:
                    raise UnknownUserError(key.user)
                db.execute(f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", key_values(key))

        await self._run(work)

    async def list_keys(self, user: str) -> list[ApiKeyRecord]:
        def work(db: sqlite3.Connection) -> list[ApiKeyRecord]:
            if _get_user(db, user) is None:
                raise UnknownUserError(user)
            rows = db.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE user_name = ? ORDER BY created_at, prefix", (user,)
            )
            return [_key(row) for row in rows]

        return await self._run(work)

    async def find_key(self, prefix: str) -> tuple[ApiKeyRecord, UserAccount] | None:
        def work(db: sqlite3.Connection) -> tuple[ApiKeyRecord, UserAccount] | None:
            row = db.execute(
                f"SELECT {_KEY_SELECT}, name, role, groups_json, disabled, limits_json, "
                "users.created_at AS user_created_at "
                "FROM api_keys JOIN users ON users.name = api_keys.user_name WHERE prefix = ?",
                (prefix,),
            ).fetchone()
            if row is None:
                return None
            user = UserAccount(
                name=row["name"],
                role=check_role(row["role"]),
                groups=tuple(json.loads(row["groups_json"])),
                disabled=bool(row["disabled"]),
                created_at=row["user_created_at"],
                limits=limits_from_json(row["limits_json"]),
            )
            return _key(row), user

        return await self._run(work)

    async def revoke_key(self, prefix: str, at: float) -> ApiKeyRecord:
        def work(db: sqlite3.Connection) -> ApiKeyRecord:
            with transaction(db):
                db.execute("UPDATE api_keys SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL", (at, prefix))
                row = db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE prefix = ?", (prefix,)).fetchone()
            if row is None:
                raise UnknownKeyError(prefix)
            return _key(row)

        return await self._run(work)

    async def touch_key(self, prefix: str, at: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute("UPDATE api_keys SET last_used_at = ? WHERE prefix = ?", (at, prefix))

        await self._run(work)

    async def import_user(self, user: UserAccount, keys: Sequence[ApiKeyRecord]) -> tuple[bool, int]:
        check_own_keys(user, keys)

        def work(db: sqlite3.Connection) -> tuple[bool, int]:
            with transaction(db):
                added = db.execute(
                    f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                    user_values(user),
                ).rowcount
                keys_added = sum(
                    db.execute(
                        f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (prefix) DO NOTHING",
                        key_values(key),
                    ).rowcount
                    for key in keys
                )
            return added > 0, keys_added

        return await self._run(work)

    async def close(self) -> None:
        await self._run(lambda db: db.close())
