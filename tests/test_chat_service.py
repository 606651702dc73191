"""The chat service over real SQLite: defaults, windowing, and turns that end well, badly or early."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conftest import LOCAL_MODEL, make_service
from genai_chatbot.chat.service import (
    ChatService,
    GenerationOptions,
    SessionNotFoundError,
    TurnEnded,
    TurnEvent,
)
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import ModelNotFoundError, ProviderError
from genai_chatbot.models.providers.local import LocalProvider
from genai_chatbot.models.types import ChatChunk, Message
from scripted import ScriptedProvider


async def ended(events: AsyncIterator[TurnEvent]) -> TurnEnded:
    last = [item async for item in events][-1]
    assert isinstance(last, TurnEnded)
    return last


async def test_the_default_system_prompt_makes_the_embedded_model_answer(service: ChatService) -> None:
    session = await service.create_session("alice")
    events = await service.start_turn(
        "alice", session.id, "What is the capital of France?", options=GenerationOptions(temperature=0)
    )
    answer = (await ended(events)).message
    assert answer.status == "complete"
    assert "Paris" in answer.content
    assert answer.model_id == LOCAL_MODEL
    assert answer.completion_tokens and answer.prompt_tokens and answer.latency_ms


async def test_a_session_system_prompt_replaces_the_default(settings: Settings) -> None:
    provider = ScriptedProvider(["ok"])
    chat = make_service(settings, provider)
    session = await chat.create_session("u", model_id="scripted/echo", system_prompt="Answer in French.")
    await ended(await chat.start_turn("u", session.id, "hi"))
    assert provider.requests[-1].system == "Answer in French."
    other = await chat.create_session("u", model_id="scripted/echo")
    await ended(await chat.start_turn("u", other.id, "hi"))
    assert provider.requests[-1].system == settings.default_system_prompt


async def test_history_is_trimmed_to_the_context_window_keeping_the_newest_turns(settings: Settings) -> None:
    provider = ScriptedProvider(["fine"], context_window=200)
    chat = make_service(settings, provider)
    session = await chat.create_session("u", model_id="scripted/echo")

    def question(turn: int) -> str:
        return f"question {turn} " + "word " * 20

    for turn in range(12):
        await ended(await chat.start_turn("u", session.id, question(turn)))
    # The history gets 200 (the window) - 100 (the reply budget: half the window) - 13 (the default system
    # prompt: 28 characters / 3 + 4) = 87 estimated tokens. A question estimates to 41 (111-112 characters
    # / 3 + 4), an answer "fine" to 5: the newest question, the last answer and its question fill the 87
    # exactly, and the answer before them would not fit.
    counts = await provider.count_tokens("echo", settings.default_system_prompt, [Message("user", question(11))])
    assert counts == [13, 41]
    assert [(m.role, m.content) for m in provider.requests[-1].messages] == [
        ("user", question(10)),
        ("assistant", "fine"),
        ("user", question(11)),
    ]
    _, stored = await chat.session_messages("u", session.id)
    assert len(stored) == 24  # trimming shapes the request, never the stored history


@pytest.mark.slow  # a second embedded model, with a small context
async def test_history_sent_to_the_embedded_model_fits_its_context(settings: Settings) -> None:
    small = LocalProvider(settings.local.model_copy(update={"context_size": 256, "threads": 2}))
    chat = make_service(settings, small)
    session = await chat.create_session("u")
    options = GenerationOptions(temperature=0, max_tokens=16)
    for turn in range(6):
        answer = (
            await ended(await chat.start_turn("u", session.id, f"Tell me fact {turn} about cats.", options=options))
        ).message
        assert answer.status == "complete", answer.error
        assert answer.prompt_tokens is not None and answer.prompt_tokens + 16 <= 256
    await small.aclose()


async def test_a_failing_provider_leaves_a_failed_turn_with_its_reason_and_partial_text(
    settings: Settings,
) -> None:
    chat = make_service(settings, ScriptedProvider(["The answer ", "is", ProviderError("upstream broke; try again")]))
    session = await chat.create_session("u", model_id="scripted/echo")
    answer = (await ended(await chat.start_turn("u", session.id, "question"))).message
    assert answer.status == "failed"
    assert answer.error == "upstream broke; try again"
    assert answer.content == "The answer is"
    _, stored = await chat.session_messages("u", session.id)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "failed")]


async def test_a_consumer_that_leaves_mid_answer_stores_it_as_cancelled(settings: Settings) -> None:
    chat = make_service(settings, ScriptedProvider(["partial ", None]))
    session = await chat.create_session("u", model_id="scripted/echo")
    events = await chat.start_turn("u", session.id, "question")
    async for item in events:
        if isinstance(item, ChatChunk) and item.text:
            break
    await events.aclose()  # type: ignore[attr-defined]
    _, stored = await chat.session_messages("u", session.id)
    assert stored[-1].status == "cancelled"
    assert stored[-1].content == "partial "


async def test_an_unknown_model_is_refused_before_anything_is_stored(settings: Settings) -> None:
    chat = make_service(settings, ScriptedProvider(["x"]))
    session = await chat.create_session("u", model_id="scripted/echo")
    with pytest.raises(ModelNotFoundError, match=r"'nope/model' does not exist\. Available models: scripted/echo"):
        await chat.start_turn("u", session.id, "hi", model_id="nope/model")
    _, stored = await chat.session_messages("u", session.id)
    assert stored == []


async def test_sessions_survive_reopening_the_database_and_stay_private(settings: Settings) -> None:
    first = make_service(settings, ScriptedProvider(["remembered"]))
    session = await first.create_session("alice", model_id="scripted/echo")
    await ended(await first.start_turn("alice", session.id, "remember this"))
    await first.store.close()

    reopened = make_service(settings, ScriptedProvider([]))
    again, messages = await reopened.session_messages("alice", session.id)
    assert again.title == "remember this"
    assert [m.content for m in messages] == ["remember this", "remembered"]
    assert await reopened.list_sessions("bob") == []
    with pytest.raises(SessionNotFoundError):
        await reopened.session_messages("bob", session.id)
    with pytest.raises(SessionNotFoundError):
        await reopened.delete_session("bob", session.id)
    await reopened.store.close()
