"""The usage part of the governor: budgets and rate limits before a turn, usage and cost after it.

Before a turn (`admit`), at most one store round trip, and none for a caller without limits: the budgets
of the user and of each of their governed groups are compared with the period's spend so far, the
tokens-per-minute limits with the minute's tokens, and one request of each requests-per-minute limit is
taken, all in one transaction (`UsageStore.admit`). Requests are taken as leases (`leases.py`): far from
the limit, a store admission takes a share of the minute for this process's next turns, which then only
read. After a turn (`finish`), one round trip adds it to the daily usage rows and the counters
(`UsageStore.record`).

Decisions, documented in the README:
- Budgets are checked before a turn and counted when it ends: a turn started under budget may finish over
  it, and concurrent turns may together overshoot by what they spend. The next turn is refused.
- A group's limits are the group's, shared by its members: `budget_usd = 5` for `interns` is five dollars
  for all interns together. A user's own limits come from `genai-chatbot users set`.
- Tokens per minute count the tokens turns actually used, when they end, in the minute they end; a turn
  is refused while its minute's count has reached the limit (so a burst may overshoot by what it uses).
- A turn is attributed to its user and, whole, to each of the user's governed groups (those with a
  `[groups.NAME]` policy): group figures overlap, and summing them over groups can exceed the total.
- A turn that never ran (refused after admission, cancelled before any usage) is not recorded and gives
  its request-per-minute slot back (to its process's lease, when it came from one).
- Windows are UTC: a day budget resets at 00:00 UTC, a month budget on the 1st at 00:00 UTC.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping

from genai_chatbot.auth.principal import Principal
from genai_chatbot.governance.errors import BudgetExceededError, LimitReachedError, RateLimitedError
from genai_chatbot.governance.gate import Admission, Outcome, Surface
from genai_chatbot.governance.leases import Leases
from genai_chatbot.governance.policies import PolicySource
from genai_chatbot.governance.prices import PriceTable
from genai_chatbot.governance.settings import GroupPolicy, Limits
from genai_chatbot.governance.usage_store import (
    Check,
    Refusal,
    TurnUsage,
    UsageStore,
    Windows,
    group_scope,
    user_scope,
)
from genai_chatbot.models.types import ModelInfo

logger = logging.getLogger(__name__)

#: How long a user's own limits are cached: a change through the CLI or admin API applies within this.
USER_LIMITS_TTL_SECONDS = 10.0
_MAX_CACHED_USERS = 10_000


def has_limits(limits: Limits) -> bool:
    return any(
        value is not None
        for value in (
            limits.budget_usd,
            limits.budget_tokens,
            limits.requests_per_minute,
            limits.tokens_per_minute,
        )
    )


def _describe(refusal: Refusal) -> str:
    limits = refusal.check.limits
    if refusal.kind == "budget_usd":
        return f"budget_usd {limits.budget_usd:g} per {limits.budget_period}"
    if refusal.kind == "budget_tokens":
        return f"budget_tokens {limits.budget_tokens} per {limits.budget_period}"
    return f"{refusal.kind} {getattr(limits, refusal.kind)}"


def limit_error(refusal: Refusal, windows: Windows, now: float) -> LimitReachedError:
    """The 429 of a refusal: what is spent, when it resets, and what to do meanwhile."""
    what = f"{refusal.check.label}: {_describe(refusal)}"
    if refusal.kind.startswith("budget"):
        reset_at = windows.budget(refusal.check.limits.budget_period)[1]
        spent = f"${refusal.used:.4f}" if refusal.kind == "budget_usd" else f"{int(refusal.used)} tokens"
        message = (
            f"The budget of {what} is spent ({spent} used); it resets at "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(reset_at))}. Ask an admin to raise it, or wait."
        )
        return BudgetExceededError(
            message, limit=what, reset_at=reset_at, retry_after_seconds=math.ceil(reset_at - now)
        )
    reset_at = windows.minute_ends
    message = f"Rate limit of {what} reached; retry after {math.ceil(reset_at - now)} s."
    return RateLimitedError(message, limit=what, reset_at=reset_at, retry_after_seconds=math.ceil(reset_at - now))


def nothing_used(outcome: Outcome) -> bool:
    """A turn that never ran: cancelled before any token or usage was seen."""
    return (
        outcome.status == "cancelled"
        and outcome.first_token_seconds is None
        and not outcome.prompt_tokens
        and not outcome.completion_tokens
    )


class _Recording:
    def __init__(
        self, governor: UsageGovernor, caller: Principal, groups: tuple[str, ...], checks: list[Check], windows: Windows
    ) -> None:
        self._governor = governor
        self._caller = caller
        self._groups = groups
        self._checks = checks
        self._windows = windows

    async def finish(self, outcome: Outcome) -> None:
        await self._governor.record(self._caller, self._groups, self._checks, self._windows, outcome)


class UsageGovernor:
    """Enforces budgets and rate limits of users and groups, and records every turn's usage and cost."""

    def __init__(
        self,
        store: UsageStore,
        policies: PolicySource,
        prices: PriceTable,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._policies = policies
        self._prices = prices
        self._clock = clock
        self._user_limits: dict[str, tuple[float, Limits | None]] = {}
        self._pruned_minute = ""
        self._unpriced: set[str] = set()
        self._running = 0  # turns admitted and not yet recorded, in this process
        self._leases = Leases()
        self._at_once: set[str] = set()  # users whose last admission did not ask the store

    async def visible_models(self, caller: Principal, models: list[ModelInfo]) -> list[ModelInfo]:
        return models

    async def admit(self, caller: Principal, model: ModelInfo, surface: Surface, max_tokens: int) -> Admission:
        now = self._clock()
        windows = Windows.at(now)
        policies = await self._policies.group_policies()
        groups = tuple(sorted({g for g in caller.groups if g in policies}))
        checks = await self._checks(caller.user_id, groups, policies, now)
        alone = self._running == 0
        self._running += 1  # until `record`: concurrent admissions see they are not alone
        try:
            if checks:
                await self._admit_checks(caller.user_id, checks, windows, alone, now)
            else:
                self._remember(caller.user_id, at_once=True)
        except BaseException:
            self._running -= 1
            raise
        return _Recording(self, caller, groups, checks, windows)

    async def _admit_checks(self, user_id: str, checks: list[Check], windows: Windows, alone: bool, now: float) -> None:
        """Take leased requests where this process holds a lease; the store compares the rest (budgets and
        tokens per minute are always its to read) and takes new leases. A refusal gives the leased back."""
        holding = self._leases.take(checks, windows)
        takes = any(c.limits.requests_per_minute is not None and c.scope not in holding for c in checks)
        reads = any(c.has_budget or c.limits.tokens_per_minute is not None for c in checks)
        self._remember(user_id, at_once=not takes and not reads)
        if not takes and not reads:
            return  # requests per minute alone, all leased: nothing to ask the store
        try:
            grant = await self.store.admit(checks, windows, alone=alone, holding=holding)
            if grant.refusal is not None:
                raise limit_error(grant.refusal, windows, now)
        except BaseException:  # refused, or the store failed: the leased requests were not used
            for scope in holding:
                self._leases.give_back(scope, windows)
            raise
        self._leases.learn(checks, windows, grant)

    def _remember(self, user_id: str, *, at_once: bool) -> None:
        if not at_once:
            self._at_once.discard(user_id)
            return
        if len(self._at_once) >= _MAX_CACHED_USERS:
            self._at_once.clear()
        self._at_once.add(user_id)

    def waits_for(self, user_id: str) -> bool:
        """Whether the user's next admission likely asks the store: their last one did (to take requests, or
        to read budgets or tokens per minute)."""
        return user_id not in self._at_once

    async def record(
        self, caller: Principal, groups: tuple[str, ...], checks: list[Check], windows: Windows, outcome: Outcome
    ) -> None:
        """Add an ended turn to the store; a turn that never ran gives back its requests instead."""
        self._running -= 1
        if nothing_used(outcome):
            taken = [
                c.scope
                for c in checks
                if c.limits.requests_per_minute is not None and not self._leases.give_back(c.scope, windows)
            ]
            if taken:
                await self.store.release(taken, windows)
            return
        prompt, completion = outcome.prompt_tokens or 0, outcome.completion_tokens or 0
        usage = TurnUsage(
            user_id=caller.user_id,
            groups=groups,
            model_id=outcome.model_id,
            status=outcome.status,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=self._prices.cost(outcome.model_id, outcome.prompt_tokens, outcome.completion_tokens),
            latency_ms=outcome.latency_seconds * 1000,
        )
        if usage.cost_usd is None and outcome.prompt_tokens is not None and outcome.model_id not in self._unpriced:
            self._unpriced.add(outcome.model_id)  # said once per model and process: the log is for admins
            logger.warning(
                "Model %r has no price, so its turns have no cost and USD budgets do not count them; "
                'set [prices."%s"] input_per_million and output_per_million.',
                outcome.model_id,
                outcome.model_id,
            )
        ended = Windows.at(self._clock())
        minute_scopes = [c.scope for c in checks if c.limits.tokens_per_minute is not None]
        prune = ended.minute != self._pruned_minute  # once a minute per process is enough to keep it small
        self._pruned_minute = ended.minute
        try:
            await self.store.record(usage, minute_scopes, ended, prune)
        except Exception:  # the answer was given: a lost usage row must not turn it into an error
            logger.exception("Could not record the usage of a turn of %r on %s", caller.user_id, outcome.model_id)

    async def _checks(
        self, user_id: str, groups: tuple[str, ...], policies: Mapping[str, GroupPolicy], now: float
    ) -> list[Check]:
        checks = [Check(group_scope(g), f"group {g}", policies[g]) for g in groups if has_limits(policies[g])]
        own = await self._own_limits(user_id, now)
        if own is not None and has_limits(own):
            checks.append(Check(user_scope(user_id), f"user {user_id}", own))
        return sorted(checks, key=lambda c: c.scope)  # one lock order for every replica (PostgreSQL)

    async def _own_limits(self, user_id: str, now: float) -> Limits | None:
        cached = self._user_limits.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        limits = await self.store.user_limits(user_id)
        if len(self._user_limits) >= _MAX_CACHED_USERS:
            self._user_limits.clear()
        self._user_limits[user_id] = (now + USER_LIMITS_TTL_SECONDS, limits)
        return limits

    async def aclose(self) -> None:
        await self.store.close()

    def forget_user(self, user_id: str) -> None:
        """Read the user's limits again at their next turn (after an admin changed them on this server)."""
        self._user_limits.pop(user_id, None)
        self._leases.forget(user_scope(user_id))
