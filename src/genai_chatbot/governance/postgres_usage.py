"""`UsageStore` on the PostgreSQL database of the history (`database_url`), shared by every replica.

Each call is one transaction on one pooled connection. The increments are `INSERT ... ON CONFLICT DO
UPDATE`, atomic under concurrent replicas; an admission takes its requests-per-minute slots (and lease) by
row lock in that transaction and gives them all back (rolls back) when any check refuses.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from psycopg import AsyncConnection
from psycopg.rows import DictRow, tuple_row

from genai_chatbot.chat.postgres_db import PostgresDatabase
from genai_chatbot.governance import usage_sql as sql
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.usage_store import (
    Check,
    Grant,
    Refusal,
    TurnUsage,
    UsageQuery,
    UsageRow,
    Windows,
    group_scope,
    lease_size,
    user_scope,
)


def _pg(statement: str) -> str:
    return statement.replace("?", "%s")


READ_COUNTER_ROW, TAKE_REQUEST, RELEASE_REQUEST = map(
    _pg, (sql.READ_COUNTER_ROW, sql.TAKE_REQUEST, sql.RELEASE_REQUEST)
)
TAKE_MORE = _pg(sql.TAKE_MORE_REQUESTS)
ADD_DAILY, ADD_COUNTER, PRUNE_COUNTERS = map(_pg, (sql.ADD_DAILY, sql.ADD_COUNTER, sql.PRUNE_COUNTERS))
READ_USER_LIMITS = _pg(sql.READ_USER_LIMITS)


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


async def _counter(db: AsyncConnection[DictRow], scope: str, period: str) -> tuple[int, int, float]:
    row = await (await db.execute(READ_COUNTER_ROW, (scope, period))).fetchone()
    return (int(row["requests"]), int(row["tokens"]), float(row["cost_usd"])) if row else (0, 0, 0.0)


async def _check(db: AsyncConnection[DictRow], check: Check, windows: Windows, held: bool) -> Refusal | int:
    """Compare one check with its counters and take its lease of the minute's requests (unless `held`): the
    refusal, or the requests taken."""
    if check.has_budget:
        _, tokens, cost = await _counter(db, check.scope, sql.budget_window(check, windows))
        refusal = sql.budget_refusal(check, tokens, cost)
        if refusal is not None:
            return refusal
    if check.limits.tokens_per_minute is not None:
        refusal = sql.minute_tokens_refusal(check, (await _counter(db, check.scope, windows.minute))[1])
        if refusal is not None:
            return refusal
    rpm, lease = check.limits.requests_per_minute, 0
    if rpm is not None and not held:
        # The row is locked by this upsert until the transaction ends: the count it returns is exact.
        taken = await db.execute(TAKE_REQUEST, (check.scope, windows.minute, windows.minute_ends + 60))
        row = await taken.fetchone()
        assert row is not None  # RETURNING of an upsert always returns the row
        requests = int(row["requests"]) - 1
        refusal = sql.minute_requests_refusal(check, requests + 1)
        if refusal is not None:
            return refusal
        lease = lease_size(rpm, requests)
        if lease > 1:
            await db.execute(TAKE_MORE, (lease - 1, check.scope, windows.minute))
    return lease


class PostgresUsageStore:
    """`UsageStore` on a PostgreSQL database; connects at `open()` or at its first call."""

    def __init__(self, url: str) -> None:
        self._database = PostgresDatabase(url)

    def __repr__(self) -> str:
        return "PostgresUsageStore(<database_url>)"

    async def open(self) -> None:
        await self._database.open()

    async def admit(
        self, checks: Sequence[Check], windows: Windows, *, alone: bool = False, holding: Collection[str] = ()
    ) -> Grant:
        taken: list[int] = []
        try:
            async with self._database.connection() as db, db.transaction():
                for check in checks:
                    result = await _check(db, check, windows, check.scope in holding)
                    if isinstance(result, Refusal):
                        raise _Refused(result)  # rolls back the requests taken before it
                    taken.append(result)
        except _Refused as refused:
            return Grant(refused.refusal)
        return Grant(None, tuple(taken))

    async def release(self, scopes: Sequence[str], windows: Windows) -> None:
        async with self._database.connection() as db, db.cursor() as cursor:
            await cursor.executemany(RELEASE_REQUEST, [(scope, windows.minute) for scope in scopes])

    async def record(self, usage: TurnUsage, minute_scopes: Sequence[str], windows: Windows, prune: bool) -> None:
        scopes = [user_scope(usage.user_id), *(group_scope(g) for g in usage.groups)]
        counters = sql.counter_rows(usage, scopes, list(minute_scopes), windows)
        async with self._database.connection() as db, db.transaction(), db.cursor() as cursor:
            await cursor.executemany(ADD_DAILY, sql.daily_rows(usage, windows))
            await cursor.executemany(ADD_COUNTER, counters)
            if prune:
                await cursor.execute(PRUNE_COUNTERS, (windows.minute_ends - 120,))

    async def user_limits(self, name: str) -> Limits | None:
        async with self._database.connection() as db:
            row = await (await db.execute(READ_USER_LIMITS, (name,))).fetchone()
        return sql.limits_from_json(row["limits_json"]) if row else None

    async def report(self, query: UsageQuery) -> list[UsageRow]:
        statement, values = sql.report_statement(query)
        async with self._database.connection() as db, db.cursor(row_factory=tuple_row) as cursor:
            await cursor.execute(_pg(statement), values)
            rows = await cursor.fetchall()
        return [sql.usage_row(row) for row in rows]

    async def close(self) -> None:
        await self._database.close()
