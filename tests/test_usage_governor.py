"""The usage part of the governor in the chat service: what a turn that never ran leaves, and what it records."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genai_chatbot.auth.principal import Principal
from genai_chatbot.chat.service import ChatService, TurnInProgressError
from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore
from genai_chatbot.governance.errors import RateLimitedError
from genai_chatbot.governance.policies import SettingsPolicies
from genai_chatbot.governance.prices import PriceTable
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.governance.sqlite_usage import SQLiteUsageStore
from genai_chatbot.governance.usage import UsageGovernor
from genai_chatbot.governance.usage_store import UsageQuery, Windows
from genai_chatbot.models.registry import ModelRegistry
from scripted import ScriptedProvider

NOW = 1_795_000_030.0  # ten seconds into a minute: the test's turns share it
ALICE = Principal("alice", "user", groups=("interns", "elsewhere"))


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ChatService]:
    path = tmp_path / "chat.sqlite3"
    governor = UsageGovernor(
        SQLiteUsageStore(path),
        SettingsPolicies({"interns": GroupPolicy(requests_per_minute=2)}),
        PriceTable({}),
        clock=lambda: NOW,
    )
    chat = ChatService(
        ModelRegistry([ScriptedProvider(["Hello", " there"])]),
        SQLiteHistoryStore(path),
        default_model="scripted/echo",
        default_system_prompt="",
        default_max_tokens=64,
        governor=governor,
    )
    yield chat
    await chat.store.close()
    await governor.aclose()


async def test_a_turn_refused_after_admission_gives_its_request_back_and_records_nothing(service: ChatService) -> None:
    first = await service.create_session("alice")
    running = await service.start_turn(ALICE, first.id, "one")  # takes 1 of 2
    with pytest.raises(TurnInProgressError):
        await service.start_turn(ALICE, first.id, "two")  # admitted (2 of 2), then refused: gives it back
    second = await service.create_session("alice")
    finished = [e async for e in await service.start_turn(ALICE, second.id, "three")]  # 2 of 2
    assert finished
    with pytest.raises(RateLimitedError) as refused:
        await service.start_turn(ALICE, second.id, "four")
    assert refused.value.limit == "group interns: requests_per_minute 2"
    assert refused.value.retry_after_seconds == 50
    await running.aclose()  # cancelled before any token: never ran
    governor = service.governor
    assert isinstance(governor, UsageGovernor)
    today = dt.date.fromisoformat(Windows.at(NOW).utc_day)
    rows = await governor.store.report(UsageQuery("group", today, today))
    assert governor._running == 0  # every admission was recorded or refused: the next one runs alone
    # Only the turn that ran is recorded, and only in the governed group, at no cost (scripted: unpriced).
    assert [(r.key, r.requests, r.unpriced, r.prompt_tokens, r.completion_tokens) for r in rows] == [
        ("interns", 1, 1, 3, 2)
    ]


async def test_a_usage_row_that_cannot_be_written_is_logged_and_the_answer_still_given(
    service: ChatService, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with sqlite3.connect(tmp_path / "chat.sqlite3") as db:
        db.execute("DROP TABLE usage_daily")  # the usage write fails when the turn ends
    session = await service.create_session("bob")
    with caplog.at_level(logging.ERROR):
        events = [e async for e in await service.start_turn(Principal("bob", "user"), session.id, "hi")]
    assert events[-1].message.status == "complete"  # type: ignore[union-attr]
    assert "Could not record the usage of a turn of 'bob'" in caplog.text
