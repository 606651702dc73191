"""Rate-limit counters in Redis (`redis_url`), for deployments that would rather not write them to the database.

Only the per-minute counters move: budgets, the daily usage rows and users' own limits stay in the history
database (`store`), which this wraps. A minute's requests are taken with `INCR` (atomic, so of concurrent
admissions on any replica exactly `requests_per_minute` see a count within the limit; far from the limit the
rest of a lease follows with `INCRBY`) and given back with `DECR` when a turn is refused or never ran;
tokens are added with `INCRBY` when a turn ends. Keys expire two minutes after their minute began. An
admission with budgets and rate limits that goes to the stores (`leases.py`) costs one database and one
Redis round trip.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from genai_chatbot.governance import usage_sql as sql
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.usage_store import (
    Check,
    Grant,
    TurnUsage,
    UsageQuery,
    UsageRow,
    UsageStore,
    Windows,
    lease_size,
)

KEY_TTL_SECONDS = 120


def _key(scope: str, windows: Windows, kind: str) -> str:
    return f"genai-chatbot:{kind}:{windows.minute}:{scope}"


class RedisRateLimits:
    """`UsageStore` with its minute counters in Redis and everything else in `store`."""

    def __init__(self, store: UsageStore, url: str) -> None:
        try:
            import redis.asyncio
        except ImportError:
            from genai_chatbot.config import ConfigError

            raise ConfigError('redis_url needs the redis client: pip install "genai-chatbot[redis]".') from None
        self._store = store
        self._redis: Any = redis.asyncio.from_url(url)

    def __repr__(self) -> str:
        return "RedisRateLimits(<redis_url>)"

    async def open(self) -> None:
        """Check that Redis answers, so that a wrong `redis_url` stops the server at its start."""
        from genai_chatbot.stores import open_store

        await open_store(self._store)
        await self._redis.ping()

    async def admit(
        self, checks: Sequence[Check], windows: Windows, *, alone: bool = False, holding: Collection[str] = ()
    ) -> Grant:
        budgets = [Check(c.scope, c.label, _budget_only(c.limits)) for c in checks if c.has_budget]
        if budgets:
            grant = await self._store.admit(budgets, windows, alone=alone)  # a read alone: no request taken
            if grant.refusal is not None:
                return grant
        taking = [c for c in checks if c.limits.requests_per_minute is not None and c.scope not in holding]
        minute = [c for c in checks if c.limits.tokens_per_minute is not None]
        taken: dict[str, int] = {}  # scope -> requests taken
        if taking or minute:
            async with self._redis.pipeline(transaction=False) as pipe:
                for check in minute:
                    pipe.get(_key(check.scope, windows, "tokens"))
                for check in taking:
                    pipe.incr(_key(check.scope, windows, "requests"))
                    pipe.expire(_key(check.scope, windows, "requests"), KEY_TTL_SECONDS)
                replies = iter(await pipe.execute())
            refusal = None
            for check in minute:
                refusal = refusal or sql.minute_tokens_refusal(check, int(next(replies) or 0))
            counts = {}
            for check in taking:
                counts[check.scope] = requests = int(next(replies))
                next(replies)  # EXPIRE
                # An INCR past the limit is given back when refused: what the minute counts stays within it.
                refusal = refusal or sql.minute_requests_refusal(check, min(requests, _limit_of(check) + 1))
            if refusal is not None:
                await self.release([c.scope for c in taking], windows)
                return Grant(refusal)
            for check in taking:
                taken[check.scope] = 1 + await self._lease(check, windows, counts[check.scope] - 1)
        return Grant(None, tuple(taken.get(c.scope, 0) for c in checks))

    async def _lease(self, check: Check, windows: Windows, before: int) -> int:
        """Take the rest of the check's lease (`usage_store.lease_size`) after its one request, `before` having
        been taken ahead of it: how many more it took. What another replica's INCR took meanwhile beyond the
        limit is given back, so the count never stays past it."""
        limit = _limit_of(check)
        more = lease_size(limit, before) - 1
        if more <= 0:
            return 0
        key = _key(check.scope, windows, "requests")
        over = int(await self._redis.incrby(key, more)) - limit
        if over > 0:
            await self._redis.decrby(key, min(over, more))
        return more - max(0, min(over, more))

    async def release(self, scopes: Sequence[str], windows: Windows) -> None:
        if scopes:
            async with self._redis.pipeline(transaction=False) as pipe:
                for scope in scopes:
                    pipe.decr(_key(scope, windows, "requests"))
                await pipe.execute()

    async def record(self, usage: TurnUsage, minute_scopes: Sequence[str], windows: Windows, prune: bool) -> None:
        await self._store.record(usage, [], windows, prune)
        if minute_scopes and usage.tokens:
            async with self._redis.pipeline(transaction=False) as pipe:
                for scope in minute_scopes:
                    pipe.incrby(_key(scope, windows, "tokens"), usage.tokens)
                    pipe.expire(_key(scope, windows, "tokens"), KEY_TTL_SECONDS)
                await pipe.execute()

    async def user_limits(self, name: str) -> Limits | None:
        return await self._store.user_limits(name)

    async def report(self, query: UsageQuery) -> list[UsageRow]:
        return await self._store.report(query)

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        finally:
            await self._store.close()


def _limit_of(check: Check) -> int:
    limit = check.limits.requests_per_minute
    assert limit is not None  # only checks with a requests-per-minute limit take requests
    return limit


def _budget_only(limits: Limits) -> Limits:
    return Limits(budget_usd=limits.budget_usd, budget_tokens=limits.budget_tokens, budget_period=limits.budget_period)
