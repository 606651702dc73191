"""The SQL of usage, budgets and rate limits, and the decisions around it, shared by SQLite and PostgreSQL.

Statements are written with `?` placeholders (SQLite's); the PostgreSQL store swaps them for `%s`. Both
databases take the same `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, which is what makes every
counter an atomic increment: two replicas adding to one row never lose either's addition, and the count a
request takes is the one it gets back.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from typing import Any

from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.usage_store import Check, Refusal, TurnUsage, UsageQuery, UsageRow, Windows

READ_COUNTER_ROW = "SELECT requests, tokens, cost_usd FROM usage_counters WHERE scope = ? AND period = ?"
READ_COUNTER_KEYED = (
    "SELECT scope, period, requests, tokens, cost_usd FROM usage_counters WHERE scope = ? AND period = ?"
)


@functools.lru_cache(maxsize=16)
def read_counter_rows(count: int) -> str:
    """The counter rows of `count` (scope, period) pairs, given as twice as many parameters: one primary-key
    lookup per pair. (A row-value `IN (VALUES ...)` reads the same rows but scans the whole table.)"""
    return " UNION ALL ".join([READ_COUNTER_KEYED] * count)


TAKE_REQUEST = (
    "INSERT INTO usage_counters (scope, period, requests, expires_at) VALUES (?, ?, 1, ?) "
    "ON CONFLICT (scope, period) DO UPDATE SET requests = usage_counters.requests + 1 RETURNING requests"
)
#: The rest of a lease (`usage_store.lease_size`), on the row `TAKE_REQUEST` locked in the same transaction.
TAKE_MORE_REQUESTS = "UPDATE usage_counters SET requests = requests + ? WHERE scope = ? AND period = ?"
RELEASE_REQUEST = "UPDATE usage_counters SET requests = requests - 1 WHERE scope = ? AND period = ? AND requests > 0"
ADD_COUNTER = (
    "INSERT INTO usage_counters (scope, period, requests, tokens, cost_usd, expires_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (scope, period) DO UPDATE SET requests = usage_counters.requests + excluded.requests, "
    "tokens = usage_counters.tokens + excluded.tokens, cost_usd = usage_counters.cost_usd + excluded.cost_usd"
)
#: The figures of a daily usage row, summed by every report.
SUMMED = (
    "requests",
    "failed",
    "cancelled",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "unpriced",
    "latency_ms",
)
ADD_DAILY = (
    f"INSERT INTO usage_daily (day, user_id, group_name, model_id, {', '.join(SUMMED)}) "
    f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in SUMMED)}) "
    "ON CONFLICT (day, user_id, group_name, model_id) DO UPDATE SET "
    + ", ".join(f"{c} = usage_daily.{c} + excluded.{c}" for c in SUMMED)
)
PRUNE_COUNTERS = "DELETE FROM usage_counters WHERE expires_at < ?"
READ_USER_LIMITS = "SELECT limits_json FROM users WHERE name = ?"

DAY = 86_400.0


def budget_refusal(check: Check, tokens: int, cost_usd: float) -> Refusal | None:
    """Refuse when the period's spend has reached the check's budget in tokens or dollars."""
    limits = check.limits
    if limits.budget_tokens is not None and tokens >= limits.budget_tokens:
        return Refusal(check, "budget_tokens", tokens)
    if limits.budget_usd is not None and cost_usd >= limits.budget_usd:
        return Refusal(check, "budget_usd", cost_usd)
    return None


def minute_tokens_refusal(check: Check, tokens: int) -> Refusal | None:
    tpm = check.limits.tokens_per_minute
    return Refusal(check, "tokens_per_minute", tokens) if tpm is not None and tokens >= tpm else None


def minute_requests_refusal(check: Check, requests: int) -> Refusal | None:
    """`requests`: the minute's count with this request taken."""
    rpm = check.limits.requests_per_minute
    return Refusal(check, "requests_per_minute", requests - 1) if rpm is not None and requests > rpm else None


def budget_window(check: Check, windows: Windows) -> str:
    return windows.budget(check.limits.budget_period)[0]


def figures(usage: TurnUsage) -> list[float]:
    """A turn's figures in `SUMMED` order: several turns of one user, groups and model sum them."""
    return [
        1,
        int(usage.status in ("failed", "interrupted")),
        int(usage.status == "cancelled"),
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cost_usd or 0.0,
        int(usage.cost_usd is None),
        usage.latency_ms,
    ]


def daily_rows(usage: TurnUsage, windows: Windows, summed: Sequence[float] | None = None) -> list[tuple[object, ...]]:
    """The `ADD_DAILY` values of a turn (or of turns of its user, groups and model whose figures are
    `summed`): the user's own row (group '') and one per group it counts in."""
    totals = tuple(figures(usage) if summed is None else summed)
    return [(windows.utc_day, usage.user_id, group, usage.model_id, *totals) for group in ("", *usage.groups)]


def counter_rows(
    usage: TurnUsage,
    scopes: list[str],
    minute_scopes: list[str],
    windows: Windows,
    summed: Sequence[float] | None = None,
) -> list[tuple[object, ...]]:
    """The `ADD_COUNTER` values of a turn (or of turns whose figures are `summed`): every scope's day and
    month, and the minutes of `minute_scopes`.

    Sorted by row key: two PostgreSQL replicas recording turns of one group lock its rows in one order.
    """
    requests, tokens, cost = (
        (1, usage.tokens, usage.cost_usd or 0.0) if summed is None else (summed[0], summed[3] + summed[4], summed[5])
    )
    rows: list[tuple[object, ...]] = []
    for scope in scopes:
        rows.append((scope, windows.day, requests, tokens, cost, windows.day_ends + DAY))
        rows.append((scope, windows.month, requests, tokens, cost, windows.month_ends + DAY))
    rows.extend((scope, windows.minute, 0, tokens, 0.0, windows.minute_ends + 60) for scope in minute_scopes)
    return sorted(rows, key=lambda row: (str(row[0]), str(row[1])))


def limits_from_json(text: str | None) -> Limits | None:
    return Limits.model_validate(json.loads(text)) if text else None


def limits_to_json(limits: Limits | None) -> str | None:
    """The user's limits as stored: only what is set, NULL when nothing is."""
    if limits is None:
        return None
    values = limits.model_dump(exclude_defaults=True)
    return json.dumps(values, sort_keys=True) if values else None


REPORT_KEYS = {"user": "user_id", "group": "group_name", "model": "model_id", "day": "day"}


def report_statement(query: UsageQuery) -> tuple[str, tuple[object, ...]]:
    """The SQL and values that sum `query`'s rows by its key: group rows for `by=group`, else own rows."""
    key = REPORT_KEYS[query.by]
    where = ["day >= ?", "day <= ?", "group_name <> ''" if query.by == "group" else "group_name = ''"]
    values: list[object] = [query.since.isoformat(), query.until.isoformat()]
    if query.user is not None:
        where.append("user_id = ?")
        values.append(query.user)
    sums = ", ".join(f"SUM({c})" for c in SUMMED)
    sql = f"SELECT {key}, {sums} FROM usage_daily WHERE {' AND '.join(where)} GROUP BY {key} ORDER BY {key} LIMIT ?"
    return sql, (*values, query.limit)


def usage_row(row: Sequence[Any]) -> UsageRow:
    key, requests, failed, cancelled, prompt, completion, cost, unpriced, latency = row
    return UsageRow(
        key=str(key),
        requests=int(requests),
        failed=int(failed),
        cancelled=int(cancelled),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        cost_usd=float(cost),
        unpriced=int(unpriced),
        latency_ms=float(latency),
    )


def utc_today(now: float) -> dt.date:
    return dt.datetime.fromtimestamp(now, dt.UTC).date()
