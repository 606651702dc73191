"""`GovernanceStore` on the PostgreSQL history database, shared by every replica and the CLI.

The tables come from the history schema's migration `m005_group_policies_and_audit_log`, so whichever
store connects first brings the database up to date.
"""

from __future__ import annotations

import time

from genai_chatbot.chat.postgres_db import PostgresDatabase
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

#: Held (per transaction) while a group is set, so two admins at once cannot pass `MAX_STORED_GROUPS`.
_GROUPS_LOCK = 0x6761695F67727073  # "gai_grps"


class PostgresGovernanceStore:
    """`GovernanceStore` on a PostgreSQL database; connects at `open()` or at its first call."""

    def __init__(self, url: str) -> None:
        self._database = PostgresDatabase(url)

    def __repr__(self) -> str:
        return "PostgresGovernanceStore(<database_url>)"

    async def open(self) -> None:
        """Connect and apply the migrations the database lacks."""
        await self._database.open()

    async def put_group(self, name: str, policy: GroupPolicy, actor: str) -> StoredGroup:
        group = StoredGroup(name, policy, time.time(), actor)
        async with self._database.connection() as db, db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock(%s)", (_GROUPS_LOCK,))
            cursor = await db.execute("SELECT count(*) AS n FROM group_policies WHERE name <> %s", (name,))
            row = await cursor.fetchone()
            too_many_groups(row["n"] if row else 0)
            await db.execute(
                f"INSERT INTO group_policies ({GROUP_COLUMNS}) VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO "
                "UPDATE SET policy_json = excluded.policy_json, updated_at = excluded.updated_at, "
                "updated_by = excluded.updated_by",
                (name, policy_json(policy), group.updated_at, actor),
            )
        return group

    async def delete_group(self, name: str) -> StoredGroup:
        async with self._database.connection() as db:
            cursor = await db.execute(f"DELETE FROM group_policies WHERE name = %s RETURNING {GROUP_COLUMNS}", (name,))
            row = await cursor.fetchone()
        if row is None:
            raise UnknownGroupError(name)
        return stored_group(row)

    async def list_groups(self) -> list[StoredGroup]:
        async with self._database.connection() as db:
            rows = await (await db.execute(f"SELECT {GROUP_COLUMNS} FROM group_policies ORDER BY name")).fetchall()
        return [stored_group(row) for row in rows]

    async def append_audit(self, entry: AuditEntry) -> None:
        async with self._database.connection() as db:
            await db.execute(
                "INSERT INTO audit_log (at, actor, action, target, detail_json) VALUES (%s, %s, %s, %s, %s)",
                (entry.at, entry.actor, entry.action, entry.target, entry.detail_json()),
            )

    async def list_audit(
        self, *, limit: int = 100, since: float | None = None, actor: str | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        where, values = audit_query(since=since, actor=actor, action=action, placeholder="%s")
        async with self._database.connection() as db:
            cursor = await db.execute(
                f"SELECT {AUDIT_COLUMNS} FROM audit_log{where} ORDER BY at DESC, id DESC LIMIT %s", (*values, limit)
            )
            rows = await cursor.fetchall()
        return [audit_entry(row) for row in rows]

    async def close(self) -> None:
        await self._database.close()
