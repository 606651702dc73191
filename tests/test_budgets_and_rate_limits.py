"""Budgets and rate limits hold across two servers on one database (SQLite file, PostgreSQL): together they
allow what one would, not twice as much, and a refusal is a 429 that says which limit and when it resets."""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from fake_openai import FakeOpenAI
from genai_chatbot.auth.users import UserAccount
from governed import COST, TOKENS, fresh_minute, governed_settings

# Real server processes, several stores or CLI subprocesses: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

ALICE = UserAccount("alice", groups=("interns",))
BOB = UserAccount("bob", groups=("interns",))
ROOT = UserAccount("root", role="admin")


def next_utc_midnight(now: float) -> float:
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()


def assert_429(response: httpx.Response, code: str, limit: str, reset_at: float) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error["type"], error["limit"]) == (code, "rate_limit_error", limit)
    assert error["reset_at"] == pytest.approx(reset_at, abs=1)
    retry_after = int(response.headers["retry-after"])
    assert retry_after == pytest.approx(math.ceil(reset_at - time.time()), abs=2) and retry_after >= 1
    return error


def test_a_group_budget_is_spent_once_across_two_servers(
    tmp_path: Path, database_url: str, upstream: FakeOpenAI, deploy: Any
) -> None:
    budget = {"budget_usd": 2.5 * COST, "budget_period": "day"}
    settings = governed_settings(tmp_path, database_url, upstream, groups={"interns": budget})
    servers = deploy(settings, ALICE, BOB, ROOT)
    # $0.015 a request: the budget allows a third request (0.030 < 0.0375) and refuses the fourth, whichever
    # server and member asks. Each server alone would have allowed three.
    answers = [servers.ask("alice", 0), servers.ask("bob", 1), servers.ask("alice", 1)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    for user, server in (("alice", 0), ("bob", 1), ("alice", 1)):
        error = assert_429(
            servers.ask(user, server),
            "budget_exceeded",
            "group interns: budget_usd 0.0375 per day",
            next_utc_midnight(time.time()),
        )
        assert "$0.0450 used" in error["message"] and "resets at" in error["message"]
    assert servers.ask("root", 0).status_code == 200  # not in the group: not bound by its budget
    assert len([r for r in upstream.requests if r.path.endswith("/chat/completions")]) == 4


def test_a_users_token_budget_set_through_the_admin_api_applies_at_once_and_on_the_other_server(
    tmp_path: Path, database_url: str, upstream: FakeOpenAI, deploy: Any
) -> None:
    servers = deploy(governed_settings(tmp_path, database_url, upstream), ALICE, ROOT)
    assert servers.ask("alice", 0).status_code == 200  # server 0 now knows alice has no limits of her own
    limits = {"budget_tokens": 2 * TOKENS, "budget_period": "month"}
    changed = servers.client("root", 0).patch("/api/admin/users/alice", json={"limits": limits})
    unset = dict.fromkeys(["budget_usd", "requests_per_minute", "tokens_per_minute"])
    assert changed.json()["limits"] == {**limits, **unset}
    assert servers.ask("alice", 0).status_code == 200  # 12 tokens of 24 were spent before: 24 now
    now = dt.datetime.now(dt.UTC)
    first_of_next = dt.datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=dt.UTC).timestamp()
    for server in (0, 1):
        assert_429(
            servers.ask("alice", server), "budget_exceeded", "user alice: budget_tokens 24 per month", first_of_next
        )
    assert servers.ask("root", 1).status_code == 200


def test_requests_per_minute_of_a_group_are_shared_by_two_servers_under_concurrent_load(
    tmp_path: Path, database_url: str, upstream: FakeOpenAI, deploy: Any
) -> None:
    settings = governed_settings(tmp_path, database_url, upstream, groups={"interns": {"requests_per_minute": 5}})
    servers = deploy(settings, ALICE, BOB)
    fresh_minute()
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda i: servers.ask(("alice", "bob")[i % 2], i % 2), range(12)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 7
    refused = next(a for a in answers if a.status_code == 429)
    minute_ends = (int(time.time() // 60) + 1) * 60.0
    error = assert_429(refused, "rate_limited", "group interns: requests_per_minute 5", minute_ends)
    assert "retry after" in error["message"]


def test_tokens_per_minute_count_what_turns_used_on_either_server(
    tmp_path: Path, database_url: str, upstream: FakeOpenAI, deploy: Any
) -> None:
    settings = governed_settings(tmp_path, database_url, upstream, groups={"interns": {"tokens_per_minute": 20}})
    servers = deploy(settings, ALICE, BOB)
    fresh_minute()
    assert servers.ask("alice", 0).status_code == 200  # 12 tokens of 20
    assert servers.ask("bob", 1).status_code == 200  # admitted at 12, ends at 24
    assert_429(
        servers.ask("alice", 1),
        "rate_limited",
        "group interns: tokens_per_minute 20",
        (int(time.time() // 60) + 1) * 60,
    )


def test_with_redis_url_two_servers_share_the_minute_counters_in_redis(
    tmp_path: Path, upstream: FakeOpenAI, deploy: Any, redis_url: str
) -> None:
    groups = {"interns": {"requests_per_minute": 4, "tokens_per_minute": 1000, "budget_tokens": 10 * TOKENS}}
    database = f"sqlite:///{tmp_path}/chat.sqlite3"
    settings = governed_settings(tmp_path, database, upstream, groups=groups, redis_url=redis_url)
    servers = deploy(settings, ALICE, BOB)
    fresh_minute()
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: servers.ask(("alice", "bob")[i % 2], i % 2), range(10)))
    assert sorted(a.status_code for a in answers) == [200] * 4 + [429] * 6
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {"rate_limited"}
    with sqlite3.connect(tmp_path / "chat.sqlite3") as db:
        periods = {row[0].partition(":")[0] for row in db.execute("SELECT period FROM usage_counters")}
        used = db.execute("SELECT SUM(requests) FROM usage_daily WHERE group_name = 'interns'").fetchone()[0]
    assert periods == {"day", "month"} and used == 4  # minutes in Redis; budgets and usage in the database
    keys = {key.decode() for key in redis.Redis.from_url(redis_url).keys("genai-chatbot:*")}
    assert {key.split(":")[1] for key in keys} == {"requests", "tokens"}
