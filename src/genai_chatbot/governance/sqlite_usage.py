"""`UsageStore` on the SQLite history database, with its own connection (WAL: the server and the CLI share it).

Each call is one transaction in one worker-thread hop. BEGIN IMMEDIATE takes the write lock first, so the
read-compare-increment of an admission cannot interleave with another process's: two servers on one file
never both take the last request of a minute.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from genai_chatbot.chat.sqlite_db import SQLiteDatabase
from genai_chatbot.chat.sqlite_store import migrate
from genai_chatbot.chat.sqlite_tx import transaction
from genai_chatbot.governance import usage_sql as sql
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.usage_store import (
    Check,
    Refusal,
    TurnUsage,
    UsageQuery,
    UsageRow,
    Windows,
    group_scope,
    user_scope,
)


class _Refused(Exception):
    """Rolls the admission's transaction back: nothing is taken from any counter."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


def _admit(db: sqlite3.Connection, checks: Sequence[Check], windows: Windows) -> Refusal | None:
    try:
        with transaction(db):
            for check in checks:
                refusal = None
                if check.has_budget:
                    row = db.execute(sql.READ_COUNTER, (check.scope, sql.budget_window(check, windows))).fetchone()
                    refusal = sql.budget_refusal(check, *(row or (0, 0.0)))
                if refusal is None and check.limits.tokens_per_minute is not None:
                    row = db.execute(sql.READ_COUNTER, (check.scope, windows.minute)).fetchone()
                    refusal = sql.minute_tokens_refusal(check, row[0] if row else 0)
                if refusal is None and check.limits.requests_per_minute is not None:
                    taken = db.execute(sql.TAKE_REQUEST, (check.scope, windows.minute, windows.minute_ends + 60))
                    refusal = sql.minute_requests_refusal(check, taken.fetchone()[0])
                if refusal is not None:
                    raise _Refused(refusal)
    except _Refused as refused:
        return refused.refusal
    return None


def _record(
    db: sqlite3.Connection, usage: TurnUsage, minute_scopes: Sequence[str], windows: Windows, prune: bool
) -> None:
    scopes = [user_scope(usage.user_id), *(group_scope(g) for g in usage.groups)]
    with transaction(db):
        db.executemany(sql.ADD_DAILY, sql.daily_rows(usage, windows))
        db.executemany(sql.ADD_COUNTER, sql.counter_rows(usage, scopes, list(minute_scopes), windows))
        if prune:
            db.execute(sql.PRUNE_COUNTERS, (windows.minute_ends - 120,))


class SQLiteUsageStore:
    """`UsageStore` on one SQLite file; calls run in a worker thread, one at a time."""

    def __init__(self, path: Path) -> None:
        self._database = SQLiteDatabase(path)
        migrate(self._database.connection)

    async def admit(self, checks: Sequence[Check], windows: Windows) -> Refusal | None:
        return await self._database.run(lambda db: _admit(db, checks, windows))

    async def release(self, scopes: Sequence[str], windows: Windows) -> None:
        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.executemany(sql.RELEASE_REQUEST, [(scope, windows.minute) for scope in scopes])

        await self._database.run(work)

    async def record(self, usage: TurnUsage, minute_scopes: Sequence[str], windows: Windows, prune: bool) -> None:
        await self._database.run(lambda db: _record(db, usage, minute_scopes, windows, prune))

    async def user_limits(self, name: str) -> Limits | None:
        def work(db: sqlite3.Connection) -> Limits | None:
            row = db.execute(sql.READ_USER_LIMITS, (name,)).fetchone()
            return sql.limits_from_json(row[0]) if row else None

        return await self._database.run(work)

    async def report(self, query: UsageQuery) -> list[UsageRow]:
        statement, values = sql.report_statement(query)
        rows = await self._database.run(lambda db: db.execute(statement, values).fetchall())
        return [sql.usage_row(tuple(row)) for row in rows]

    async def close(self) -> None:
        await self._database.run(lambda db: db.close())
