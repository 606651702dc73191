"""`UsageStore` on the SQLite history database, with its own connection (WAL: the server and the CLI share it).

Writes run in transactions shared by the writes waiting at the same moment (`sqlite_batches.GroupCommit`).
BEGIN IMMEDIATE takes the write lock first, so the read-compare-increment of an admission cannot
interleave with another process's: two servers on one file never both take the last request of a minute.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_chatbot.chat.sqlite_db import SQLiteDatabase
from genai_chatbot.chat.sqlite_store import migrate
from genai_chatbot.governance import usage_sql as sql
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.sqlite_batches import GroupCommit
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


@dataclass(frozen=True, slots=True)
class _Admit:
    checks: Sequence[Check]
    windows: Windows


@dataclass(frozen=True, slots=True)
class _Record:
    usage: TurnUsage
    minute_scopes: Sequence[str]
    windows: Windows
    prune: bool


@dataclass(frozen=True, slots=True)
class _Release:
    scopes: Sequence[str]
    windows: Windows


_Write = _Admit | _Record | _Release


def _add_records(db: sqlite3.Connection, records: list[_Record]) -> None:
    """The batch's turns, their increments summed per row first: one upsert per row, however many turns."""
    daily: dict[tuple[object, ...], list[float]] = {}
    counters: dict[tuple[object, ...], list[float]] = {}
    for record in records:
        usage = record.usage
        for row in sql.daily_rows(usage, record.windows):
            _add(daily, row[:4], row[4:])
        scopes = [user_scope(usage.user_id), *(group_scope(g) for g in usage.groups)]
        for row in sql.counter_rows(usage, scopes, list(record.minute_scopes), record.windows):
            _add(counters, row[:2], row[2:])
    if daily:
        db.executemany(sql.ADD_DAILY, [(*key, *sums) for key, sums in daily.items()])
    if counters:
        db.executemany(sql.ADD_COUNTER, [(*key, *sums) for key, sums in sorted(counters.items(), key=_row_key)])
    for record in records:
        if record.prune:
            db.execute(sql.PRUNE_COUNTERS, (record.windows.minute_ends - 120,))
            break


def _add(rows: dict[tuple[object, ...], list[float]], key: tuple[object, ...], values: tuple[Any, ...]) -> None:
    """Sum `values` into `rows[key]`; the last value is an expiry time, of which the latest is kept."""
    numbers = [float(v) for v in values]
    sums = rows.setdefault(key, [0.0] * len(numbers))
    for i, value in enumerate(numbers[:-1]):
        sums[i] += value
    sums[-1] = max(sums[-1], numbers[-1])


def _row_key(item: tuple[tuple[object, ...], list[float]]) -> tuple[str, ...]:
    return tuple(str(part) for part in item[0])


#: Pairs read per statement: SQLite allows 500 terms in a compound SELECT.
_PAIRS_PER_READ = 100


def _read_counters(db: sqlite3.Connection, admissions: list[_Admit]) -> dict[tuple[str, str], list[float]]:
    """Every counter row the admissions compare with, a hundred primary-key lookups per statement (one
    statement per row cost as much as the rest of the transaction); rows not there yet are absent."""
    keys = sorted(
        {
            key
            for admission in admissions
            for check in admission.checks
            for key in (
                (check.scope, sql.budget_window(check, admission.windows)),
                (check.scope, admission.windows.minute),
            )
        }
    )
    found: dict[tuple[str, str], list[float]] = {}
    for start in range(0, len(keys), _PAIRS_PER_READ):
        chunk = keys[start : start + _PAIRS_PER_READ]
        values = [part for key in chunk for part in key]
        for row in db.execute(sql.read_counter_rows(len(chunk)), values).fetchall():
            found[(row[0], row[1])] = [float(row[2]), float(row[3]), float(row[4])]
    return found


def _admit_all(db: sqlite3.Connection, admissions: list[_Admit]) -> list[Refusal | None]:
    """Each admission in turn: compare its checks with the counters, then take one request of each
    requests-per-minute, or refuse taking none. Counters are read once per batch and kept up to date here;
    the batch's transaction holds the write lock, so nothing else changes them meanwhile."""
    seen = _read_counters(db, admissions)  # (scope, period) -> [requests, tokens, cost]

    def counter(scope: str, period: str) -> list[float]:
        return seen.setdefault((scope, period), [0.0, 0.0, 0.0])

    taken: dict[tuple[object, ...], list[float]] = {}
    results: list[Refusal | None] = []
    for admission in admissions:
        windows, refusal, wanted = admission.windows, None, []
        for check in admission.checks:
            _, tokens, cost = counter(check.scope, sql.budget_window(check, windows))
            requests, minute_tokens, _ = counter(check.scope, windows.minute)
            refusal = sql.budget_refusal(check, int(tokens), cost) if check.has_budget else None
            refusal = refusal or sql.minute_tokens_refusal(check, int(minute_tokens))
            refusal = refusal or sql.minute_requests_refusal(check, int(requests) + 1)
            if refusal is not None:
                break
            if check.limits.requests_per_minute is not None:
                wanted.append((check.scope, windows.minute, windows.minute_ends + 60))
        if refusal is None:
            for scope, minute, expires in wanted:
                counter(scope, minute)[0] += 1
                _add(taken, (scope, minute), (1, 0, 0.0, expires))
        results.append(refusal)
    if taken:
        db.executemany(sql.ADD_COUNTER, [(*key, *sums) for key, sums in sorted(taken.items(), key=_row_key)])
    return results


def _apply(db: sqlite3.Connection, writes: list[_Write]) -> list[Refusal | None]:
    """A batch of writes: turns ended and requests given back first (admissions then see them), then the
    admissions in order; each write's result (an admission's refusal, or None)."""
    records = [w for w in writes if isinstance(w, _Record)]
    if records:
        _add_records(db, records)
    for release in (w for w in writes if isinstance(w, _Release)):
        db.executemany(sql.RELEASE_REQUEST, [(scope, release.windows.minute) for scope in release.scopes])
    admits = [w for w in writes if isinstance(w, _Admit)]
    if not admits:
        return [None] * len(writes)
    admissions = iter(_admit_all(db, admits))
    return [next(admissions) if isinstance(w, _Admit) else None for w in writes]


class SQLiteUsageStore:
    """`UsageStore` on one SQLite file: writes in shared transactions, reads in a worker thread."""

    def __init__(self, path: Path) -> None:
        self._database = SQLiteDatabase(path)
        migrate(self._database.connection)
        self._writes: GroupCommit[_Write, Refusal | None] = GroupCommit(self._database, _apply)

    async def admit(self, checks: Sequence[Check], windows: Windows, *, alone: bool = False) -> Refusal | None:
        # Alone, the admission lies on the way to the first token with nothing to batch it with: at once.
        return await self._writes.run(_Admit(checks, windows), at_once=alone)

    async def release(self, scopes: Sequence[str], windows: Windows) -> None:
        await self._writes.run(_Release(scopes, windows))

    async def record(self, usage: TurnUsage, minute_scopes: Sequence[str], windows: Windows, prune: bool) -> None:
        await self._writes.run(_Record(usage, minute_scopes, windows, prune))

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
        await self._database.close()
