"""Usage, budgets and rate limits as records, and the `UsageStore` contract the SQL stores implement.

Everything that must hold across replicas lives in the store and changes only through its atomic
increments: the daily usage rows (`usage_daily`) and the counters budgets and rate limits read
(`usage_counters`: a scope — a user or a group — and a window — a UTC day, a UTC month or a minute).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from genai_chatbot.governance.settings import BudgetPeriod, Limits

#: A limit that can refuse a turn, as the settings name it.
LimitKind = Literal["budget_usd", "budget_tokens", "requests_per_minute", "tokens_per_minute"]
#: How usage can be grouped.
UsageBy = Literal["user", "group", "model", "day"]


def user_scope(name: str) -> str:
    return f"user:{name}"


def group_scope(name: str) -> str:
    return f"group:{name}"


@dataclass(frozen=True, slots=True)
class Windows:
    """The counter windows around one moment (UTC): its day, month and minute, and when each ends."""

    day: str
    month: str
    minute: str
    day_ends: float
    month_ends: float
    minute_ends: float

    @classmethod
    def at(cls, now: float) -> Windows:
        return _windows_of_minute(int(now // 60))

    def budget(self, period: BudgetPeriod) -> tuple[str, float]:
        """The window of a budget of this period, and when it ends (the budget's reset time)."""
        return (self.day, self.day_ends) if period == "day" else (self.month, self.month_ends)

    @property
    def utc_day(self) -> str:
        return self.day.removeprefix("day:")


@functools.lru_cache(maxsize=4)
def _windows_of_minute(minute: int) -> Windows:
    """Every field depends on the minute alone: computed once per minute, not per request."""
    moment = dt.datetime.fromtimestamp(minute * 60, dt.UTC)
    midnight = dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC)
    days = calendar.monthrange(moment.year, moment.month)[1]
    month_start = midnight.replace(day=1)
    return Windows(
        day=f"day:{midnight.date().isoformat()}",
        month=f"month:{moment.year:04d}-{moment.month:02d}",
        minute=f"minute:{minute}",
        day_ends=(midnight + dt.timedelta(days=1)).timestamp(),
        month_ends=(month_start + dt.timedelta(days=days)).timestamp(),
        minute_ends=(minute + 1) * 60.0,
    )


@dataclass(frozen=True, slots=True)
class Check:
    """The limits of one scope (a user or a group) to check before a turn; `label` names it to people."""

    scope: str
    label: str
    limits: Limits

    @property
    def has_budget(self) -> bool:
        return self.limits.budget_usd is not None or self.limits.budget_tokens is not None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which check refused, by which limit, having seen `used` of it."""

    check: Check
    kind: LimitKind
    used: float


#: A requests-per-minute lease is at most this share of what remains of the limit (see `lease_size`).
LEASE_SHARE = 64


def lease_size(limit: int, taken: int) -> int:
    """How many requests of a minute an admission takes when `taken` of its `limit` are gone: 1/64 of what
    remains, and 1 (its own) within 128 of the limit, where it is exact.

    The ones beyond its own are a lease its process uses for its next admissions without a store round trip
    (`leases.py`). A replica that stops holding a lease leaves at most 1/64 of the remainder unused until the
    minute ends: the limit is never exceeded, and under-used by at most that share per replica.
    """
    return max(1, (limit - taken) // LEASE_SHARE)


@dataclass(frozen=True, slots=True)
class Grant:
    """An admission's answer: a refusal (nothing taken), or the requests each check took, in order (its own
    and its lease's; 0 without a requests-per-minute limit, or for a scope whose request was held)."""

    refusal: Refusal | None
    taken: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TurnUsage:
    """One ended turn or request, as it is added to the daily rows and the counters."""

    user_id: str
    groups: tuple[str, ...]  # the governed groups it is attributed to
    model_id: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None: the model has no price, or its usage was not reported
    latency_ms: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Usage between two UTC days (inclusive), of one user (None: everyone), grouped `by`."""

    by: UsageBy
    since: dt.date
    until: dt.date
    user: str | None = None
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Usage summed over a group of daily rows; `key` is the user, group, model or day."""

    key: str
    requests: int
    failed: int
    cancelled: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    unpriced: int  # requests whose cost is unknown: `cost_usd` leaves them out
    latency_ms: float  # summed; divide by `requests` for the mean


class UsageStore(Protocol):
    """Where usage, the budget and rate-limit counters and users' own limits live (the history database)."""

    async def admit(
        self, checks: Sequence[Check], windows: Windows, *, alone: bool = False, holding: Collection[str] = ()
    ) -> Grant:
        """In one transaction: compare each check's budget and tokens-per-minute with its counters, and take
        `lease_size` requests of each requests-per-minute (none for the scopes in `holding`, whose request
        the caller holds already); the first refusal (taking nothing), or what each check took.
        `alone`: no other turn of this process is running, a hint that the store need not wait to batch."""
        ...

    async def release(self, scopes: Sequence[str], windows: Windows) -> None:
        """Give back one request `admit` took in each scope's minute: the turn never ran."""
        ...

    async def record(self, usage: TurnUsage, minute_scopes: Sequence[str], windows: Windows, prune: bool) -> None:
        """In one transaction: add `usage` to its daily rows and to the day and month counters of the user and
        its groups, its tokens to the minute counters of `minute_scopes`; drop expired counters if `prune`."""
        ...

    async def user_limits(self, name: str) -> Limits | None:
        """The user's own limits, or None (no such user, or no limits set)."""
        ...

    async def report(self, query: UsageQuery) -> list[UsageRow]:
        """Usage summed by `query.by`, keys in order, at most `query.limit` rows."""
        ...

    async def close(self) -> None: ...
