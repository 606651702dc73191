"""`UsageStore` on the `PREFIX-governance` DynamoDB table, shared by every replica (the decisions are
`usage_sql.py`'s, so every store refuses alike).

Items (keys drawn in `chat.dynamodb_tables`):
- counter `pk = c#<scope>`, `sk = <window>` (`day:2026-11-26`, `month:2026-11`, `minute:29571840`):
  requests, tokens, cost_usd, and `expires_at`, the table's TTL attribute: DynamoDB deletes a counter some
  time after its window ended (no prune pass; an expired counter is never read again, its window is over);
- usage   `pk = u#<UTC month>`, `sk = <UTC day>#<JSON [user, group, model]>` (group "" for the user's own
  row): user_id, group_name, model_id, day and the summed figures. A month is one partition, so a report over
  a year is at most 13 Queries, each a range of days.

Every change is an `ADD`, atomic however many replicas add to one item at once.

`admit` reads the counters it needs (one strongly consistent BatchGetItem) and decides exactly as the SQL
stores do (budget, then tokens per minute, then requests per minute, check after check). A refusal takes
nothing. Admitted, it takes the requests-per-minute slots in one TransactWriteItems: each scope's lease of
n requests (`usage_store.lease_size`, 1 near the limit) an `ADD requests n` on condition
`attribute_not_exists(requests) OR requests < :limit - n + 1` (and the minute's tokens still under their
limit), each budget a `ConditionCheck` that it is still unspent. If another replica got
there first a condition fails, the transaction takes nothing, and the admission reads and decides again:
two replicas never both take the last request of a minute.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, cast

from genai_chatbot.chat.dynamodb_db import Item, cancellation_codes, is_code
from genai_chatbot.chat.dynamodb_tables import CheckedTable
from genai_chatbot.governance import usage_sql as sql
from genai_chatbot.governance.settings import Limits
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

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

#: Admissions and recordings tried again at most this often when other replicas keep winning the items.
ATTEMPTS = 20


def _counter_key(scope: str, window: str) -> Item:
    return {"pk": {"S": f"c#{scope}"}, "sk": {"S": window}}


def _n(value: float) -> dict[str, str]:
    return {"N": str(value) if isinstance(value, int) else repr(value)}


def _add(table: str, key: Item, adds: dict[str, float], sets: dict[str, Any]) -> TransactWriteItemTypeDef:
    """An Update that ADDs `adds` to the item of `key` and SETs `sets` (attribute values)."""
    names = {f"#{n}": n for n in (*adds, *sets)}
    values: dict[str, Any] = {f":{n}": _n(v) for n, v in adds.items()} | {f":{n}": v for n, v in sets.items()}
    expression = "ADD " + ", ".join(f"#{n} :{n}" for n in adds)
    if sets:
        expression += " SET " + ", ".join(f"#{n} = :{n}" for n in sets)
    return {
        "Update": {
            "TableName": table,
            "Key": key,
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _under(attribute: str, limit: float | None, values: dict[str, Any], condition: list[str]) -> None:
    """Add `attribute` < `limit` (absent counts as 0) to `condition`, when there is a limit."""
    if limit is not None:
        values[f":{attribute}_limit"] = _n(limit)
        condition.append(f"(attribute_not_exists({attribute}) OR {attribute} < :{attribute}_limit)")


def _figures(item: dict[str, Any] | None) -> list[float]:
    """requests, tokens and cost of a counter item (zeros when absent)."""
    if item is None:
        return [0.0, 0.0, 0.0]
    return [float(item[name]["N"]) if name in item else 0.0 for name in ("requests", "tokens", "cost_usd")]


class DynamoDBUsageStore:
    """`UsageStore` on the governance table of `dynamodb://PREFIX`; users' limits from its users table."""

    def __init__(self, prefix: str) -> None:
        self._table = CheckedTable(prefix, 2)
        self._name = self._table.name

    def __repr__(self) -> str:
        return f"DynamoDBUsageStore({self._table.db.prefix!r})"

    async def open(self) -> None:
        await self._table.open()

    def _read(self, client: DynamoDBClient, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[float]]:
        """The counters of `keys` (scope, window), strongly consistent, in one BatchGetItem per 100."""
        found: dict[tuple[str, str], list[float]] = {key: _figures(None) for key in keys}
        for start in range(0, len(keys), 100):
            chunk = [_counter_key(*key) for key in keys[start : start + 100]]
            request: Any = {self._name: {"Keys": chunk, "ConsistentRead": True}}
            while request:
                answer = client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._name, []):
                    found[(item["pk"]["S"][2:], item["sk"]["S"])] = _figures(item)
                request = answer.get("UnprocessedKeys")
        return found

    def _admit(
        self, client: DynamoDBClient, checks: Sequence[Check], windows: Windows, holding: Collection[str]
    ) -> Grant:
        keys = sorted(
            {(c.scope, sql.budget_window(c, windows)) for c in checks if c.has_budget}
            | {(c.scope, windows.minute) for c in checks if c.limits.tokens_per_minute or c.limits.requests_per_minute}
        )
        if not keys:
            return Grant(None, (0,) * len(checks))
        for attempt in range(ATTEMPTS):
            counters = self._read(client, keys)
            ops: list[TransactWriteItemTypeDef] = []
            taken: list[int] = []
            for check in checks:
                refusal, tokens, cost = None, 0.0, 0.0
                held = check.scope in holding
                if check.has_budget:
                    _, tokens, cost = counters[(check.scope, sql.budget_window(check, windows))]
                    refusal = sql.budget_refusal(check, int(tokens), cost)
                requests, minute_tokens, _ = counters.get((check.scope, windows.minute), _figures(None))
                refusal = refusal or sql.minute_tokens_refusal(check, int(minute_tokens))
                refusal = refusal or (None if held else sql.minute_requests_refusal(check, int(requests) + 1))
                if refusal is not None:
                    return Grant(refusal)
                rpm = check.limits.requests_per_minute
                lease = lease_size(rpm, int(requests)) if rpm is not None and not held else 0
                ops.extend(self._hold(check, windows, lease))
                taken.append(lease)
            if not any("Update" in op for op in ops):
                return Grant(None, tuple(taken))  # nothing to take: the reads decided
            try:
                client.transact_write_items(TransactItems=ops)
                return Grant(None, tuple(taken))
            except Exception as exc:
                if not cancellation_codes(exc):
                    raise
                # a condition failed (another replica took or spent meanwhile) or a conflict: decide again
                _back_off(attempt)
        raise RuntimeError("The usage counters kept changing under this admission; try the request again.")

    def _hold(self, check: Check, windows: Windows, lease: int) -> list[TransactWriteItemTypeDef]:
        """What keeps this check's decision true at commit, and takes its `lease` of the minute's requests
        (all of them or none: the minute must have room for the whole lease)."""
        ops: list[TransactWriteItemTypeDef] = []
        limits = check.limits
        if check.has_budget:
            values: dict[str, Any] = {}
            condition: list[str] = []
            _under("tokens", limits.budget_tokens, values, condition)
            _under("cost_usd", limits.budget_usd, values, condition)
            ops.append(self._condition(_counter_key(check.scope, sql.budget_window(check, windows)), condition, values))
        values, condition = {}, []
        if lease and limits.requests_per_minute is not None:
            _under("requests", limits.requests_per_minute - lease + 1, values, condition)
        _under("tokens", limits.tokens_per_minute, values, condition)
        if not lease:
            if condition:
                ops.append(self._condition(_counter_key(check.scope, windows.minute), condition, values))
            return ops
        op = _add(
            self._name,
            _counter_key(check.scope, windows.minute),
            {"requests": lease},
            {"expires_at": _n(int(windows.minute_ends + 60))},
        )
        update: Any = op["Update"]
        update["ConditionExpression"] = " AND ".join(condition)
        update["ExpressionAttributeValues"] |= values
        ops.append(op)
        return ops

    def _condition(self, key: Item, condition: list[str], values: dict[str, Any]) -> TransactWriteItemTypeDef:
        return {
            "ConditionCheck": {
                "TableName": self._name,
                "Key": key,
                "ConditionExpression": " AND ".join(condition),
                "ExpressionAttributeValues": values,
            }
        }

    async def admit(
        self, checks: Sequence[Check], windows: Windows, *, alone: bool = False, holding: Collection[str] = ()
    ) -> Grant:
        return await self._table.run(lambda client: self._admit(client, checks, windows, holding))

    async def release(self, scopes: Sequence[str], windows: Windows) -> None:
        def work(client: DynamoDBClient) -> None:
            for scope in scopes:
                try:
                    client.update_item(
                        TableName=self._name,
                        Key=_counter_key(scope, windows.minute),
                        UpdateExpression="ADD requests :minus",
                        ConditionExpression="requests > :zero",
                        ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
                    )
                except Exception as exc:
                    if not is_code(exc, "ConditionalCheckFailedException"):
                        raise  # else nothing was taken in that minute: nothing to give back

        await self._table.run(work)

    def _record_ops(
        self, usage: TurnUsage, minute_scopes: Sequence[str], windows: Windows
    ) -> list[TransactWriteItemTypeDef]:
        ops: list[TransactWriteItemTypeDef] = []
        day = windows.utc_day
        for row in sql.daily_rows(usage, windows):
            _, user, group, model, *summed = row
            key: Item = {
                "pk": {"S": f"u#{day[:7]}"},
                "sk": {"S": f"{day}#{json.dumps([user, group, model], ensure_ascii=False)}"},
            }
            sets = {"user_id": {"S": user}, "group_name": {"S": group}, "model_id": {"S": model}, "day": {"S": day}}
            ops.append(
                _add(self._name, key, {n: cast(float, v) for n, v in zip(sql.SUMMED, summed, strict=True)}, sets)
            )
        scopes = [user_scope(usage.user_id), *(group_scope(g) for g in usage.groups)]
        counters: dict[tuple[str, str], list[float]] = {}
        for row in sql.counter_rows(usage, scopes, list(minute_scopes), windows):
            requests, tokens, cost, expires = (float(cast(float, v)) for v in row[2:])
            sums = counters.setdefault((str(row[0]), str(row[1])), [0.0, 0.0, 0.0, 0.0])
            sums[0], sums[1], sums[2] = sums[0] + requests, sums[1] + tokens, sums[2] + cost
            sums[3] = max(sums[3], expires)
        for (scope, window), (requests, tokens, cost, expires) in counters.items():
            adds: dict[str, float] = {"requests": int(requests), "tokens": int(tokens), "cost_usd": cost}
            ops.append(_add(self._name, _counter_key(scope, window), adds, {"expires_at": _n(int(expires))}))
        return ops

    async def record(self, usage: TurnUsage, minute_scopes: Sequence[str], windows: Windows, prune: bool) -> None:
        """The turn's ADDs in one TransactWriteItems (100 items at most each: a user in very many groups takes
        several); `prune` is DynamoDB's own work here (the counters' TTL)."""
        ops = self._record_ops(usage, minute_scopes, windows)

        def work(client: DynamoDBClient) -> None:
            for start in range(0, len(ops), 100):
                for attempt in range(ATTEMPTS):
                    try:
                        client.transact_write_items(TransactItems=ops[start : start + 100])
                        break
                    except Exception as exc:
                        if "TransactionConflict" not in cancellation_codes(exc):
                            raise  # else an admission held one of these counters at that moment: again
                        _back_off(attempt)
                else:
                    raise RuntimeError("The usage counters kept changing while a turn was recorded.")

        await self._table.run(work)

    async def user_limits(self, name: str) -> Limits | None:
        def work(client: DynamoDBClient) -> Limits | None:
            item = client.get_item(
                TableName=self._table.db.users_table,
                Key={"pk": {"S": "user"}, "sk": {"S": name}},
                ConsistentRead=True,
                ProjectionExpression="limits",
            ).get("Item")
            return sql.limits_from_json(item["limits"]["S"]) if item and "limits" in item else None

        return await self._table.run(work)

    async def report(self, query: UsageQuery) -> list[UsageRow]:
        def work(client: DynamoDBClient) -> list[UsageRow]:
            sums: dict[str, list[float]] = {}
            for month, first, last in _months(query.since, query.until):
                values: dict[str, Any] = {
                    ":month": {"S": f"u#{month}"},
                    ":first": {"S": first},
                    ":last": {"S": f"{last}#~"},  # '~' sorts after every JSON key that follows a day's '#'
                    ":own": {"S": ""},
                }
                condition = "group_name <> :own" if query.by == "group" else "group_name = :own"
                if query.user is not None:
                    condition += " AND user_id = :user"
                    values[":user"] = {"S": query.user}
                pages = client.get_paginator("query").paginate(
                    TableName=self._name,
                    KeyConditionExpression="pk = :month AND sk BETWEEN :first AND :last",
                    FilterExpression=condition,
                    ExpressionAttributeValues=values,
                    ConsistentRead=True,
                )
                for item in (item for page in pages for item in page.get("Items", [])):
                    row = sums.setdefault(item[sql.REPORT_KEYS[query.by]]["S"], [0.0] * len(sql.SUMMED))
                    for i, name in enumerate(sql.SUMMED):
                        row[i] += float(item[name]["N"]) if name in item else 0.0
            keys = sorted(sums)[: query.limit]
            return [sql.usage_row((key, *sums[key])) for key in keys]

        return await self._table.run(work)

    async def close(self) -> None:
        await self._table.close()


def _back_off(attempt: int) -> None:
    """Wait a random few milliseconds, more after each lost attempt, so that replicas contending for one
    counter (a busy group's minute) stop colliding (this runs on one of the store's threads)."""
    time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))


def _months(since: dt.date, until: dt.date) -> list[tuple[str, str, str]]:
    """Each UTC month between the two days, with the first and last day of the range in it (ISO)."""
    months = []
    first = since
    while first <= until:
        following = (first.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        last = min(until, following - dt.timedelta(days=1))
        months.append((first.isoformat()[:7], first.isoformat(), last.isoformat()))
        first = following
    return months
