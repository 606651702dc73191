"""`GovernanceStore` on the SQLite history database (`<data_dir>/chat.sqlite3`), shared by server and CLI.

Like the user store it opens its own connection to the same file (WAL: the CLI writes while the server
runs); the tables come from the history store's migration `_m005_group_policies_and_audit_log`.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from genai_chatbot.chat.sqlite_db import SQLiteDatabase
from genai_chatbot.chat.sqlite_store import migrate
from genai_chatbot.chat.sqlite_tx import transaction
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.governance.store import (
    AUDIT_COLUMNS,
    GROUP_COLUMNS,
    AuditEntry,
    StoredGroup,
    UnknownGroupError,
    audit_entry,
    audit_query,
    policy_json,
    stored_group,
    too_many_groups,
)


class SQLiteGovernanceStore:
    """`GovernanceStore` on one SQLite file; calls run in a worker thread, one at a time."""

    def __init__(self, path: Path) -> None:
        self._database = SQLiteDatabase(path)
        migrate(self._database.connection)

    async def put_group(self, name: str, policy: GroupPolicy, actor: str) -> StoredGroup:
        group = StoredGroup(name, policy, time.time(), actor)

        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                count = db.execute("SELECT count(*) FROM group_policies WHERE name <> ?", (name,)).fetchone()[0]
                too_many_groups(count)
                db.execute(
                    f"INSERT INTO group_policies ({GROUP_COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO "
                    "UPDATE SET policy_json = excluded.policy_json, updated_at = excluded.updated_at, "
                    "updated_by = excluded.updated_by",
                    (name, policy_json(policy), group.updated_at, actor),
                )

        await self._database.run(work)
        return group

    async def delete_group(self, name: str) -> StoredGroup:
        def work(db: sqlite3.Connection) -> StoredGroup:
            with transaction(db):
                row = db.execute(f"SELECT {GROUP_COLUMNS} FROM group_policies WHERE name = ?", (name,)).fetchone()
                if row is None:
                    raise UnknownGroupError(name)
                db.execute("DELETE FROM group_policies WHERE name = ?", (name,))
            return stored_group(dict(row))

        return await self._database.run(work)

    async def list_groups(self) -> list[StoredGroup]:
        def work(db: sqlite3.Connection) -> list[StoredGroup]:
            rows = db.execute(f"SELECT {GROUP_COLUMNS} FROM group_policies ORDER BY name").fetchall()
            return [stored_group(dict(row)) for row in rows]

        return await self._database.run(work)

    async def append_audit(self, entry: AuditEntry) -> None:
        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute(
                    "INSERT INTO audit_log (at, actor, action, target, detail_json) VALUES (?, ?, ?, ?, ?)",
                    (entry.at, entry.actor, entry.action, entry.target, entry.detail_json()),
                )

        await self._database.run(work)

    async def list_audit(
        self, *, limit: int = 100, since: float | None = None, actor: str | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        where, values = audit_query(since=since, actor=actor, action=action, placeholder="?")

        def work(db: sqlite3.Connection) -> list[AuditEntry]:
            rows = db.execute(
                f"SELECT {AUDIT_COLUMNS} FROM audit_log{where} ORDER BY at DESC, id DESC LIMIT ?", (*values, limit)
            ).fetchall()
            return [audit_entry(dict(row)) for row in rows]

        return await self._database.run(work)

    async def close(self) -> None:
        await self._database.run(lambda db: db.close())
