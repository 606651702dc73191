"""Requests-per-minute leases in the usage governor: fewer store writes, never more than the limit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from genai_chatbot.auth.principal import Principal
from genai_chatbot.governance.errors import BudgetExceededError, RateLimitedError
from genai_chatbot.governance.gate import Admission, Outcome
from genai_chatbot.governance.policies import SettingsPolicies
from genai_chatbot.governance.prices import PriceTable
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.governance.sqlite_usage import SQLiteUsageStore
from genai_chatbot.governance.usage import UsageGovernor
from genai_chatbot.governance.usage_store import TurnUsage, Windows, group_scope, lease_size
from genai_chatbot.models.types import ModelInfo

NOW = 1_795_000_030.0  # ten seconds into a minute: the test's turns share it
ALICE = Principal("alice", "user", groups=("interns",))
MODEL = ModelInfo(id="vendor/m", provider="vendor", name="m", display_name="m")
RAN = Outcome("vendor/m", "complete", 10, 5, 0.2, 0.1)
NEVER_RAN = Outcome("vendor/m", "cancelled", None, None, 0.0)

Governors = Callable[..., UsageGovernor]


@pytest.fixture
async def governors(tmp_path: Path) -> AsyncIterator[Governors]:
    """Makes governors on one SQLite file, as replicas of one deployment; closes them after the test."""
    made: list[UsageGovernor] = []

    def make(**policy: object) -> UsageGovernor:
        policies = SettingsPolicies({"interns": GroupPolicy.model_validate(policy)})
        governor = UsageGovernor(
            SQLiteUsageStore(tmp_path / "chat.sqlite3"), policies, PriceTable({}), clock=lambda: NOW
        )
        made.append(governor)
        return governor

    yield make
    for governor in made:
        await governor.aclose()


def requests_taken(tmp_path: Path) -> int:
    """The minute's requests the store counts as taken by group interns (leases included)."""
    with sqlite3.connect(tmp_path / "chat.sqlite3") as db:
        row = db.execute(
            "SELECT requests FROM usage_counters WHERE scope = ? AND period = ?",
            (group_scope("interns"), Windows.at(NOW).minute),
        ).fetchone()
    return int(row[0]) if row else 0


async def test_far_from_the_limit_admissions_come_from_a_lease_taken_in_one_store_write(
    governors: Governors, tmp_path: Path
) -> None:
    governor = governors(requests_per_minute=1000)
    first = lease_size(1000, 0)
    admitted = [await governor.admit(ALICE, MODEL, "v1", 10) for _ in range(first)]
    assert requests_taken(tmp_path) == first == 15  # one write took them all
    assert not governor.waits_for("alice")  # the lease answers: the next admission will not wait either
    admitted.append(await governor.admit(ALICE, MODEL, "v1", 10))  # the lease is spent: a new one
    assert requests_taken(tmp_path) == first + lease_size(1000, first)
    for admission in admitted:
        await admission.finish(RAN)


async def test_a_turn_that_never_ran_gives_its_request_back_to_the_lease(governors: Governors, tmp_path: Path) -> None:
    governor = governors(requests_per_minute=1000)
    admissions = [await governor.admit(ALICE, MODEL, "v1", 10) for _ in range(15)]
    await admissions[0].finish(NEVER_RAN)
    await governor.admit(ALICE, MODEL, "v1", 10)  # the request given back, not a new lease
    assert requests_taken(tmp_path) == 15


async def test_a_lease_ends_with_its_minute(tmp_path: Path) -> None:
    clock = [NOW]
    policies = SettingsPolicies({"interns": GroupPolicy(requests_per_minute=1000)})
    governor = UsageGovernor(
        SQLiteUsageStore(tmp_path / "chat.sqlite3"), policies, PriceTable({}), clock=lambda: clock[0]
    )
    try:
        await governor.admit(ALICE, MODEL, "v1", 10)  # a lease of 15 in this minute, 14 left
        clock[0] = NOW + 60
        await governor.admit(ALICE, MODEL, "v1", 10)  # the next minute: a new lease, not the old one's rest
        with sqlite3.connect(tmp_path / "chat.sqlite3") as db:
            taken = db.execute(
                "SELECT requests FROM usage_counters WHERE scope = ? AND period = ?",
                (group_scope("interns"), Windows.at(NOW + 60).minute),
            ).fetchone()
        assert taken == (15,)
    finally:
        await governor.aclose()


async def test_two_replicas_with_leases_admit_exactly_the_limit_together(governors: Governors, tmp_path: Path) -> None:
    replicas = [governors(requests_per_minute=300), governors(requests_per_minute=300)]

    async def admit_until_refused(governor: UsageGovernor) -> list[Admission]:
        admitted = []
        while True:
            try:
                admitted.append(await governor.admit(ALICE, MODEL, "v1", 10))
            except RateLimitedError:
                return admitted
            await asyncio.sleep(0)  # the other replica's turn

    both = await asyncio.gather(*(admit_until_refused(governor) for governor in replicas))
    assert len(both[0]) + len(both[1]) == 300 and both[0] and both[1]
    assert requests_taken(tmp_path) == 300


async def test_budgets_are_read_from_the_store_at_every_admission_even_with_a_lease(
    governors: Governors, tmp_path: Path
) -> None:
    here = governors(requests_per_minute=1000, budget_tokens=100)
    there = governors(requests_per_minute=1000, budget_tokens=100)
    await (await here.admit(ALICE, MODEL, "v1", 10)).finish(RAN)  # a lease of 15, 1 used
    spent = TurnUsage("bob", ("interns",), "vendor/m", "complete", 90, 10, None, 1.0)
    await there.store.record(spent, [], Windows.at(NOW), prune=False)  # another replica spends the rest
    with pytest.raises(BudgetExceededError):
        await here.admit(ALICE, MODEL, "v1", 10)  # its lease has requests, but the budget is spent
    assert requests_taken(tmp_path) == 15  # the refused admission took nothing and gave its request back


class ChangingPolicies:
    """Group policies an admin changes while the process runs (as the store's policies, after their cache)."""

    def __init__(self, policy: GroupPolicy) -> None:
        self.groups = {"interns": policy}

    async def group_policies(self) -> dict[str, GroupPolicy]:
        return self.groups


async def test_a_changed_limit_is_not_served_from_a_lease_taken_under_the_old_one(tmp_path: Path) -> None:
    policies = ChangingPolicies(GroupPolicy(requests_per_minute=1000))
    governor = UsageGovernor(SQLiteUsageStore(tmp_path / "chat.sqlite3"), policies, PriceTable({}), clock=lambda: NOW)
    try:
        await governor.admit(ALICE, MODEL, "v1", 10)  # a lease of 15 under 1000
        policies.groups = {"interns": GroupPolicy(requests_per_minute=16)}  # the admin lowers the limit
        await governor.admit(ALICE, MODEL, "v1", 10)  # 16 of 16: from the store, not from the old lease
        with pytest.raises(RateLimitedError):
            await governor.admit(ALICE, MODEL, "v1", 10)
        assert requests_taken(tmp_path) == 16
    finally:
        await governor.aclose()
