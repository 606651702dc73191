"""The usage store on every database: daily rows, atomic counters shared by several stores, users' limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genai_chatbot.auth.users import UserAccount
from genai_chatbot.governance import usage_sql as sql
from genai_chatbot.governance.redis_limits import RedisRateLimits
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.sqlite_usage import SQLiteUsageStore
from genai_chatbot.governance.usage_store import (
    Check,
    TurnUsage,
    UsageQuery,
    UsageStore,
    Windows,
    group_scope,
    lease_size,
)
from stores import Stores

NOW = dt.datetime(2026, 11, 26, 23, 59, 30, tzinfo=dt.UTC).timestamp()
TODAY = dt.date(2026, 11, 26)


@pytest.fixture
async def usage_stores(stores: Stores) -> AsyncIterator[tuple[UsageStore, UsageStore]]:
    """Two usage stores on one database, as two replicas have."""
    pair = (stores.choice.usage_store(), stores.choice.usage_store())
    yield pair
    for store in pair:
        await store.close()


def turn(
    user: str,
    model: str,
    cost: float | None,
    groups: tuple[str, ...] = (),
    status: str = "complete",
) -> TurnUsage:
    return TurnUsage(user, groups, model, status, 10, 5, cost, 200.0)


def test_windows_name_the_utc_day_month_and_minute_and_when_each_ends() -> None:
    windows = Windows.at(NOW)
    assert (windows.day, windows.month) == ("day:2026-11-26", "month:2026-11")
    assert windows.day_ends == dt.datetime(2026, 11, 27, tzinfo=dt.UTC).timestamp()
    assert windows.month_ends == dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()
    assert windows.minute_ends == NOW + 30
    assert Windows.at(dt.datetime(2026, 12, 31, 12, tzinfo=dt.UTC).timestamp()).month_ends == (
        dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    )


async def test_turns_roll_up_into_one_row_per_day_user_group_and_model(
    usage_stores: tuple[UsageStore, UsageStore],
) -> None:
    first, second = usage_stores
    windows = Windows.at(NOW)
    await first.record(turn("alice", "openai/gpt-4o", 0.01, ("interns", "staff")), [], windows, prune=False)
    await second.record(turn("alice", "openai/gpt-4o", 0.02, ("interns", "staff")), [], windows, prune=False)
    await first.record(turn("bob", "local/x", 0.0, ("interns",), "failed"), [], windows, prune=True)
    await first.record(turn("bob", "vendor/y", None, ()), [], windows, prune=False)

    by_user = {r.key: r for r in await first.report(UsageQuery("user", TODAY, TODAY))}
    assert by_user["alice"].requests == 2 and by_user["alice"].cost_usd == pytest.approx(0.03)
    assert (by_user["bob"].requests, by_user["bob"].failed, by_user["bob"].unpriced) == (2, 1, 1)
    assert by_user["alice"].prompt_tokens == 20 and by_user["alice"].latency_ms == 400.0
    by_group = {r.key: r.requests for r in await second.report(UsageQuery("group", TODAY, TODAY))}
    assert by_group == {"interns": 3, "staff": 2}  # a turn counts whole in each of its user's groups
    by_model = [(r.key, r.requests) for r in await second.report(UsageQuery("model", TODAY, TODAY, user="bob"))]
    assert by_model == [("local/x", 1), ("vendor/y", 1)]
    assert [r.key for r in await first.report(UsageQuery("day", TODAY, TODAY))] == ["2026-11-26"]
    assert await first.report(UsageQuery("user", TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=2))) == []


async def test_two_stores_never_take_more_requests_of_a_minute_than_the_limit_together(
    usage_stores: tuple[UsageStore, UsageStore],
) -> None:
    check = Check(group_scope("interns"), "group interns", Limits(requests_per_minute=5))
    windows = Windows.at(NOW)
    tries = [store.admit([check], windows) for store in usage_stores for _ in range(8)]
    refusals = [grant.refusal for grant in await asyncio.gather(*tries)]
    assert sum(r is None for r in refusals) == 5
    refused = next(r for r in refusals if r is not None)
    assert (refused.kind, refused.used) == ("requests_per_minute", 5)
    await usage_stores[1].release([check.scope], windows)  # a turn that never ran gives its request back
    assert (await usage_stores[0].admit([check], windows)).refusal is None
    assert (await usage_stores[0].admit([check], Windows.at(NOW + 60))).refusal is None  # the next minute starts afresh


async def take_every_request_of_a_minute(pair: tuple[UsageStore, UsageStore], limit: int) -> tuple[int, int]:
    """Admit from both stores at once until both are refused: (requests taken in all, admissions made)."""
    check = Check(group_scope("staff"), "group staff", Limits(requests_per_minute=limit))
    windows = Windows.at(NOW)
    taken = admissions = 0
    while True:
        grants = await asyncio.gather(*(store.admit([check], windows) for store in pair))
        admitted = [grant.taken[0] for grant in grants if grant.refusal is None]
        taken, admissions = taken + sum(admitted), admissions + len(admitted)
        if not admitted:
            refusal = grants[0].refusal
            assert refusal is not None and (refusal.kind, refusal.used) == ("requests_per_minute", limit)
            return taken, admissions


async def check_leases(pair: tuple[UsageStore, UsageStore]) -> None:
    first, _ = pair
    check = Check(group_scope("staff"), "group staff", Limits(requests_per_minute=1000))
    grant = await first.admit([check], Windows.at(NOW + 60))
    assert grant.taken[0] == lease_size(1000, 0) == 15  # its own request and a lease of 14
    taken, admissions = await take_every_request_of_a_minute(pair, 1000)
    assert taken == 1000  # every request of the minute is taken, none twice: leases are exact at the end
    assert admissions < 300  # a lease of a sixty-fourth of what remains: ~260 store admissions, not 1000
    # A request held from a lease is not taken again: the full minute still admits what holds one.
    held = await first.admit([check], Windows.at(NOW), holding=[check.scope])
    assert held.refusal is None and held.taken[0] == 0


async def test_leases_of_two_stores_take_a_share_of_what_remains_and_never_more_than_the_limit(
    usage_stores: tuple[UsageStore, UsageStore],
) -> None:
    await check_leases(usage_stores)


async def test_leases_in_redis_take_a_share_of_what_remains_and_never_more_than_the_limit(
    tmp_path: Path, redis_url: str
) -> None:
    pair = tuple(RedisRateLimits(SQLiteUsageStore(tmp_path / "chat.sqlite3"), redis_url) for _ in range(2))
    try:
        await check_leases((pair[0], pair[1]))
    finally:
        for store in pair:
            await store.close()


def test_a_lease_is_a_sixty_fourth_of_what_remains_and_one_near_the_limit() -> None:
    assert [lease_size(10_000, taken) for taken in (0, 9_000, 9_872, 9_873, 9_999)] == [156, 15, 2, 1, 1]
    assert lease_size(5, 0) == 1


async def test_a_spent_budget_refuses_and_a_refusal_takes_nothing(usage_stores: tuple[UsageStore, UsageStore]) -> None:
    first, second = usage_stores
    windows = Windows.at(NOW)
    budget = Check(group_scope("interns"), "group interns", Limits(budget_usd=0.02, budget_period="day"))
    rate = Check("user:alice", "user alice", Limits(requests_per_minute=1, tokens_per_minute=100))
    assert (await first.admit([budget, rate], windows)).refusal is None
    await second.record(turn("alice", "m", 0.015, ("interns",)), [rate.scope], windows, prune=False)
    await second.release([rate.scope], windows)
    assert (await first.admit([budget, rate], windows)).refusal is None  # $0.015 of $0.02 spent
    await second.record(turn("alice", "m", 0.015, ("interns",)), [rate.scope], windows, prune=False)
    refusal = (await second.admit([budget], windows)).refusal
    assert refusal is not None and refusal.kind == "budget_usd" and refusal.used == pytest.approx(0.03)
    # Refused by the budget, the request of the rate check after it in the same admission was not taken:
    assert (await first.admit([rate], Windows.at(NOW + 60))).refusal is None
    monthly = Check(budget.scope, budget.label, Limits(budget_tokens=31, budget_period="month"))
    assert (await first.admit([monthly], Windows.at(NOW + 3600))).refusal is None  # 30 tokens of 31, in the next day
    tokens = Check(rate.scope, rate.label, Limits(tokens_per_minute=30))
    refused = (await first.admit([tokens], windows)).refusal
    assert refused is not None and (refused.kind, refused.used) == ("tokens_per_minute", 30)


async def test_turns_recorded_at_once_are_summed_figure_by_figure(usage_stores: tuple[UsageStore, UsageStore]) -> None:
    # Turns ending together share a batch (SQLite sums them per caller first): every figure adds up.
    first, _ = usage_stores
    windows = Windows.at(NOW)
    turns = [turn("alice", "m", 0.01, ("interns",)) for _ in range(10)]
    turns += [turn("alice", "n", None, ("interns",), "failed"), turn("bob", "m", 0.01, ("interns",))]
    await asyncio.gather(*(first.record(t, ["user:alice"], windows, prune=False) for t in turns))
    alice = next(r for r in await first.report(UsageQuery("user", TODAY, TODAY)) if r.key == "alice")
    assert (alice.requests, alice.failed, alice.unpriced, alice.prompt_tokens) == (11, 1, 1, 110)
    assert alice.latency_ms == 11 * 200.0 and alice.cost_usd == pytest.approx(0.10)
    interns = await first.report(UsageQuery("group", TODAY, TODAY))
    assert [(r.key, r.requests, r.completion_tokens) for r in interns] == [("interns", 12, 60)]


async def test_a_users_own_limits_are_stored_on_the_user(
    stores: Stores, usage_stores: tuple[UsageStore, UsageStore]
) -> None:
    users = stores.users()
    await users.add_user(UserAccount("alice"))
    assert (await users.get_user("alice")).limits is None  # type: ignore[union-attr]
    assert await usage_stores[0].user_limits("alice") is None
    limits = Limits(budget_usd=5, budget_period="day", requests_per_minute=20)
    assert (await users.update_user("alice", limits=limits)).limits == limits
    assert await usage_stores[1].user_limits("alice") == limits
    assert [u.limits for u in await users.list_users()] == [limits]
    assert (await users.update_user("alice", limits=Limits())).limits is None
    assert await usage_stores[0].user_limits("nobody") is None


async def test_a_write_waits_for_a_busy_database_in_a_thread_while_the_loop_runs_on(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = SQLiteUsageStore(path)
    check = Check("user:alice", "user alice", Limits(requests_per_minute=1))
    other = sqlite3.connect(path, isolation_level=None)  # another process, as the database sees it
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        admission = asyncio.create_task(store.admit([check], Windows.at(NOW), alone=True))
        for _ in range(100):  # the loop keeps serving meanwhile: none of these turns is blocked
            await asyncio.sleep(0)
        assert not admission.done()
        other.execute("COMMIT")
        assert (await admission).refusal is None
        refused = (await store.admit([check], Windows.at(NOW), alone=True)).refusal
        assert refused is not None and refused.kind == "requests_per_minute"
    finally:
        other.close()
        await store.close()


async def test_a_report_over_a_month_boundary_sums_each_day_of_the_range_and_no_other(
    usage_stores: tuple[UsageStore, UsageStore],
) -> None:
    first, second = usage_stores
    days = [dt.datetime(2026, m, d, 12, tzinfo=dt.UTC).timestamp() for m, d in ((10, 31), (11, 30), (12, 1), (12, 2))]
    for n, moment in enumerate(days):
        await (first, second)[n % 2].record(turn("alice", "m", 0.5 * (n + 1)), [], Windows.at(moment), prune=False)
    rows = await first.report(UsageQuery("day", dt.date(2026, 11, 30), dt.date(2026, 12, 1)))
    assert [(r.key, r.cost_usd) for r in rows] == [("2026-11-30", 1.0), ("2026-12-01", 1.5)]
    assert [
        r.key for r in await second.report(UsageQuery("day", dt.date(2026, 10, 1), dt.date(2026, 12, 31), limit=3))
    ] == [
        "2026-10-31",
        "2026-11-30",
        "2026-12-01",
    ]


async def test_dynamodb_counters_carry_the_ttl_that_lets_dynamodb_delete_them_after_their_window(
    dynamodb_url: str,
) -> None:
    from genai_chatbot.chat.dynamodb_db import new_client
    from genai_chatbot.config import Settings
    from genai_chatbot.stores import select_store

    choice = select_store(Settings(database_url=dynamodb_url))
    store = choice.usage_store()
    windows = Windows.at(NOW)
    check = Check("user:alice", "user alice", Limits(requests_per_minute=3))
    assert (await store.admit([check], windows)).refusal is None
    await store.record(turn("alice", "m", 0.01), ["user:alice"], windows, prune=True)
    await store.close()
    client = new_client()
    items = client.scan(TableName=f"{choice.table_prefix}-governance")["Items"]
    client.close()
    expiries = {
        item["sk"]["S"].partition(":")[0]: float(item["expires_at"]["N"]) for item in items if "expires_at" in item
    }
    assert expiries == {
        "minute": windows.minute_ends + 60,
        "day": windows.day_ends + 86_400,
        "month": windows.month_ends + 86_400,
    }
    assert all("expires_at" not in item for item in items if item["pk"]["S"].startswith("u#"))  # usage rows stay


async def test_a_batch_of_admissions_reads_its_counters_by_primary_key_whatever_its_size(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = SQLiteUsageStore(path)
    windows = Windows.at(NOW)
    try:
        # 300 users admitted at once share one transaction: 600 counter rows read, beyond SQLite's 500 terms
        # of a compound SELECT, so the read is split.
        checks = [Check(f"user:u{i}", f"user u{i}", Limits(requests_per_minute=1)) for i in range(300)]
        first = await asyncio.gather(*(store.admit([check], windows) for check in checks))
        again = await asyncio.gather(*(store.admit([check], windows) for check in checks))
        assert [grant.refusal for grant in first] == [None] * 300
        assert all(g.refusal is not None and g.refusal.kind == "requests_per_minute" for g in again)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:  # a table of many users' counters is searched, never scanned
        plan = db.execute("EXPLAIN QUERY PLAN " + sql.read_counter_rows(3), ["s", "p"] * 3).fetchall()
    steps = [row[3] for row in plan]
    assert "SEARCH usage_counters USING INDEX sqlite_autoindex_usage_counters_1 (scope=? AND period=?)" in steps
    assert not [step for step in steps if step.startswith("SCAN usage_counters")]


async def test_sqlite_reads_counters_again_only_when_another_connection_wrote(tmp_path: Path) -> None:
    here, there = SQLiteUsageStore(tmp_path / "chat.sqlite3"), SQLiteUsageStore(tmp_path / "chat.sqlite3")
    budget = Check(group_scope("interns"), "group interns", Limits(budget_usd=0.05, budget_period="day"))
    windows = Windows.at(NOW)
    statements: list[str] = []
    try:
        assert (await here.admit([budget], windows, alone=True)).refusal is None  # reads, and keeps, $0
        connection = here._database._now_connection
        assert connection is not None
        connection.set_trace_callback(statements.append)
        assert (await here.admit([budget], windows, alone=True)).refusal is None
        assert not [s for s in statements if "FROM usage_counters" in s]  # nothing was written since: no read
        await here.record(turn("alice", "m", 0.03, ("interns",)), [], windows, prune=False)  # its own write
        assert (await here.admit([budget], windows, alone=True)).refusal is None  # $0.03 of $0.05, known
        assert not [s for s in statements if "SELECT" in s and "FROM usage_counters" in s]
        await there.record(turn("bob", "m", 0.03, ("interns",)), [], windows, prune=False)  # another replica
        refused = (await here.admit([budget], windows, alone=True)).refusal  # $0.06: read again, and refused
        assert refused is not None and refused.used == pytest.approx(0.06)
        assert [s for s in statements if "SELECT" in s and "FROM usage_counters" in s]
    finally:
        await here.close()
        await there.close()


async def test_sqlite_counts_its_own_turns_in_the_counters_it_keeps(tmp_path: Path) -> None:
    store = SQLiteUsageStore(tmp_path / "chat.sqlite3")
    tokens = Check("user:alice", "user alice", Limits(budget_tokens=40, budget_period="month", tokens_per_minute=100))
    windows = Windows.at(NOW)
    try:
        for _ in range(2):  # 15 tokens a turn: 0, then 15 of 40
            assert (await store.admit([tokens], windows, alone=True)).refusal is None
            await store.record(turn("alice", "m", None), ["user:alice"], windows, prune=False)
        assert (await store.admit([tokens], windows, alone=True)).refusal is None  # 30 of 40
        await store.record(turn("alice", "m", None), ["user:alice"], windows, prune=False)
        refused = (await store.admit([tokens], windows, alone=True)).refusal  # 45 of 40, without a read
        assert refused is not None and (refused.kind, refused.used) == ("budget_tokens", 45)
    finally:
        await store.close()
