"""`UsageStore` on the SQLite history database, with its own connection (WAL: the server and the CLI share it).

Writes run in transactions shared by the writes waiting at the same moment (`sqlite_batches.GroupCommit`).
BEGIN IMMEDIATE takes the write lock first, so the read-compare-increment of an admission cannot
interleave with another process's: two servers on one file never both take the last request of a minute.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from genai_chatbot.chat.sqlite_db import SQLiteDatabase
from genai_chatbot.chat.sqlite_store import migrate
from genai_chatbot.governance import usage_sql as sql
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.sqlite_batches import GroupCommit
from genai_chatbot.governance.sqlite_counters import CommittedCounters
from genai_chatbot.governance.usage_store import (
    Check,
    Grant,
    TurnUsage,
    UsageQuery,
    UsageRow,
    Windows,
    group_scope,
    lease_size,
    user_scope,
)


@dataclass(frozen=True, slots=True)
class _Admit:
    checks: Sequence[Check]
    windows: Windows
    holding: Collection[str]


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


def _add_records(db: sqlite3.Connection, records: list[_Record], counters: CommittedCounters) -> None:
    """The batch's turns, summed per user, groups and model first (a busy batch is mostly one caller's), then
    per row: one upsert per row, however many turns."""
    turns: dict[tuple[object, ...], tuple[_Record, list[float]]] = {}
    for record in records:
        usage = record.usage
        key = (usage.user_id, usage.groups, usage.model_id, tuple(record.minute_scopes), record.windows)
        figures = sql.figures(usage)
        known = turns.get(key)
        if known is None:
            turns[key] = (record, figures)
        else:
            sums = known[1]
            for i, value in enumerate(figures):
                sums[i] += value
    daily: dict[tuple[object, ...], list[float]] = {}
    rows: dict[tuple[object, ...], list[float]] = {}
    for first, summed in turns.values():
        usage, windows = first.usage, first.windows
        for row in sql.daily_rows(usage, windows, summed):
            _add(daily, row[:4], row[4:], expires=False)
        scopes = [user_scope(usage.user_id), *(group_scope(g) for g in usage.groups)]
        for row in sql.counter_rows(usage, scopes, list(first.minute_scopes), windows, summed):
            _add(rows, row[:2], row[2:])
    if daily:
        db.executemany(sql.ADD_DAILY, [(*key, *sums) for key, sums in daily.items()])
    if rows:
        db.executemany(sql.ADD_COUNTER, [(*key, *sums) for key, sums in sorted(rows.items(), key=_row_key)])
        for (scope, period), sums in rows.items():
            counters.stage((str(scope), str(period)), sums[0], sums[1], sums[2])
    for record in records:
        if record.prune:
            db.execute(sql.PRUNE_COUNTERS, (record.windows.minute_ends - 120,))
            break


def _add(
    rows: dict[tuple[object, ...], list[float]],
    key: tuple[object, ...],
    values: tuple[Any, ...],
    *,
    expires: bool = True,
) -> None:
    """Sum `values` into `rows[key]`; with `expires`, the last value is an expiry time, of which the latest
    is kept (a daily row's last value, its latency, is summed like the others)."""
    numbers = [float(v) for v in values]
    sums = rows.setdefault(key, [0.0] * len(numbers))
    summed = len(numbers) - 1 if expires else len(numbers)
    for i in range(summed):
        sums[i] += numbers[i]
    if expires:
        sums[-1] = max(sums[-1], numbers[-1])


def _row_key(item: tuple[tuple[object, ...], list[float]]) -> tuple[str, ...]:
    return tuple(str(part) for part in item[0])


#: Pairs read per statement: SQLite allows 500 terms in a compound SELECT.
_PAIRS_PER_READ = 100


def _keys(admissions: list[_Admit]) -> list[tuple[str, str]]:
    """The counter rows the admissions compare with, sorted."""
    return sorted(
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


def _read_counters(db: sqlite3.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[float]]:
    """The counter rows of `keys`, a hundred primary-key lookups per statement (one statement per row cost as
    much as the rest of the transaction); rows not there yet are absent."""
    found: dict[tuple[str, str], list[float]] = {}
    for start in range(0, len(keys), _PAIRS_PER_READ):
        chunk = keys[start : start + _PAIRS_PER_READ]
        values = [part for key in chunk for part in key]
        for row in db.execute(sql.read_counter_rows(len(chunk)), values).fetchall():
            found[(row[0], row[1])] = [float(row[2]), float(row[3]), float(row[4])]
    return found


def _admit_all(
    db: sqlite3.Connection,
    admissions: list[_Admit],
    counters: CommittedCounters | None,
    seen: dict[tuple[str, str], list[float]] | None = None,
) -> list[Grant]:
    """Each admission in turn: compare its checks with the counters (`seen`, else read), then take its lease
    of each requests-per-minute it does not hold, or refuse taking none. Counters are read once per batch and
    kept up to date here; the batch's transaction holds the write lock, so nothing else changes them
    meanwhile. The requests taken are staged in `counters` (if given), for when the batch commits."""
    if seen is None:
        seen = _read_counters(db, _keys(admissions))  # (scope, period) -> [requests, tokens, cost]

    def counter(scope: str, period: str) -> list[float]:
        return seen.setdefault((scope, period), [0.0, 0.0, 0.0])

    taken: dict[tuple[object, ...], list[float]] = {}
    results: list[Grant] = []
    for admission in admissions:
        windows, refusal, saw = admission.windows, None, []
        for check in admission.checks:
            _, tokens, cost = counter(check.scope, sql.budget_window(check, windows))
            requests, minute_tokens, _ = counter(check.scope, windows.minute)
            held = check.scope in admission.holding
            refusal = sql.budget_refusal(check, int(tokens), cost) if check.has_budget else None
            refusal = refusal or sql.minute_tokens_refusal(check, int(minute_tokens))
            refusal = refusal or (None if held else sql.minute_requests_refusal(check, int(requests) + 1))
            if refusal is not None:
                break
            rpm = check.limits.requests_per_minute
            lease = lease_size(rpm, int(requests)) if rpm is not None and not held else 0
            saw.append(lease)
        if refusal is None:
            for check, leased in zip(admission.checks, saw, strict=True):
                if leased:
                    counter(check.scope, windows.minute)[0] += leased
                    _add(taken, (check.scope, windows.minute), (leased, 0, 0.0, windows.minute_ends + 60))
        results.append(Grant(refusal, () if refusal else tuple(saw)))
    if taken:
        db.executemany(sql.ADD_COUNTER, [(*key, *sums) for key, sums in sorted(taken.items(), key=_row_key)])
        if counters is not None:
            for (scope, period), sums in taken.items():
                counters.stage((str(scope), str(period)), sums[0], sums[1], sums[2])
    return results


def _decide(db: sqlite3.Connection, admission: _Admit, counters: CommittedCounters | None) -> Grant:
    """An admission that takes nothing: no write, so no transaction of its own. On the loop's connection
    (`counters` given) it compares with the committed counters it knows, when nothing else wrote since."""
    if counters is None:
        return _admit_all(db, [admission], None)[0]
    keys = _keys([admission])
    version, known = counters.lookup(db, keys)
    if known is None:
        known = _read_counters(db, keys)
        counters.remember(version, keys, known)
    return _admit_all(db, [admission], counters, known)[0]


def _apply(db: sqlite3.Connection, writes: list[_Write], counters: CommittedCounters) -> list[Grant | None]:
    """A batch of writes: turns ended and requests given back first (admissions then see them), then the
    admissions in order; each write's result (an admission's grant, or None). Its counter changes are
    staged in `counters` (applied when the batch commits on the loop's connection)."""
    counters.begin()
    records = [w for w in writes if isinstance(w, _Record)]
    if records:
        _add_records(db, records, counters)
    for release in (w for w in writes if isinstance(w, _Release)):
        db.executemany(sql.RELEASE_REQUEST, [(scope, release.windows.minute) for scope in release.scopes])
        for scope in release.scopes:
            counters.stage_release((scope, release.windows.minute))
    admits = [w for w in writes if isinstance(w, _Admit)]
    if not admits:
        return [None] * len(writes)
    admissions = iter(_admit_all(db, admits, counters))
    return [next(admissions) if isinstance(w, _Admit) else None for w in writes]


class SQLiteUsageStore:
    """`UsageStore` on one SQLite file: writes in shared transactions, reads in a worker thread."""

    def __init__(self, path: Path) -> None:
        self._database = SQLiteDatabase(path)
        migrate(self._database.connection)
        self._counters = CommittedCounters()  # of the loop's connection (`run_now`)
        self._writes: GroupCommit[_Write, Grant | None] = GroupCommit(
            self._database, partial(_apply, counters=self._counters), self._counters.committed
        )

    async def admit(
        self, checks: Sequence[Check], windows: Windows, *, alone: bool = False, holding: Collection[str] = ()
    ) -> Grant:
        admission = _Admit(checks, windows, holding)
        if alone and not any(c.limits.requests_per_minute is not None and c.scope not in holding for c in checks):
            return await self._read(admission)
        # Alone, the admission lies on the way to the first token with nothing to batch it with: at once.
        # Else it joins the batch of writes waiting (a read in it costs less than a read of its own).
        grant = await self._writes.run(admission, at_once=alone)
        assert grant is not None  # an admission's result is its grant
        return grant

    async def _read(self, admission: _Admit) -> Grant:
        """An admission that takes nothing, decided on the counters as committed: a read on the event loop
        (WAL readers do not wait for writers, and these are a few primary-key lookups), in a thread when
        the loop's connection is busy."""
        try:
            return self._database.run_now(partial(_decide, admission=admission, counters=self._counters))
        except BlockingIOError:
            pass
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
        return await self._database.run(partial(_decide, admission=admission, counters=None))

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
