"""`EarlyAdmission.open` on its own: how the admission beside the model's first token ends in every case.

The overlap interrupts the caller's read by cancelling the caller's task and taking that cancellation back
(chat/early_admission.py). These tests hold it to what a server relies on: the refusal is what the caller
sees, the caller's task is left as it was (not cancelled by a refusal, still cancelled by its own
cancellation), a request that never ran is given back, and an admission that never started never runs.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator

import pytest

from genai_chatbot.chat.early_admission import EarlyAdmission
from genai_chatbot.governance.errors import RateLimitedError
from genai_chatbot.governance.gate import Outcome
from genai_chatbot.models.errors import ModelError
from genai_chatbot.models.types import ChatChunk

HELLO = ChatChunk(text="Hello")


class Recorded:
    """An admission that remembers how its request ended."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    async def finish(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


class Model:
    """A model's stream: its first text once `answer` is set, and whether it was closed."""

    def __init__(self, error: Exception | None = None) -> None:
        self.answer = asyncio.Event()
        self.closed = False
        self._error = error

    async def chunks(self) -> AsyncIterator[ChatChunk]:
        try:
            await self.answer.wait()
            if self._error is not None:
                raise self._error
            yield HELLO
            yield ChatChunk(text=" world")
        finally:
            self.closed = True


def refusal() -> RateLimitedError:
    limit = "user alice: requests_per_minute 1"
    return RateLimitedError("Rate limit reached", limit=limit, reset_at=0.0, retry_after_seconds=30)


async def test_a_refusal_while_reading_is_raised_closes_the_model_and_leaves_the_task_uncancelled() -> None:
    early, model = EarlyAdmission(), Model()

    async def refused() -> Recorded:
        await asyncio.sleep(0)
        raise refusal()

    with pytest.raises(RateLimitedError):
        await early.open("alice", "m", model.chunks(), refused())
    assert model.closed
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # the refusal's cancellation was taken back: this task goes on
    assert not early.allows("alice", in_flight=0)  # held back until the limit resets


async def test_an_admission_is_given_the_read_ahead_and_the_rest_of_the_stream() -> None:
    early, model, admission = EarlyAdmission(), Model(), Recorded()

    async def admitted() -> Recorded:
        return admission

    model.answer.set()
    got, chunks = await early.open("alice", "m", model.chunks(), admitted())
    assert got is admission
    assert [chunk.text async for chunk in chunks] == ["Hello", " world"]
    assert admission.outcomes == []  # reporting is the governed stream's, once the answer ends


async def test_a_caller_cancelled_while_reading_gives_the_admitted_request_back() -> None:
    early, model, admission = EarlyAdmission(), Model(), Recorded()
    admitted_once = asyncio.Event()

    async def admitted() -> Recorded:
        admitted_once.set()
        return admission

    opening = asyncio.ensure_future(early.open("alice", "m", model.chunks(), admitted()))
    await admitted_once.wait()
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert model.closed
    assert [o.status for o in admission.outcomes] == ["cancelled"]
    assert admission.outcomes[0].first_token_seconds is None  # nothing used: its request slot is given back


async def test_a_caller_cancelled_as_its_refusal_came_stays_cancelled() -> None:
    early, model = EarlyAdmission(), Model()
    opening: asyncio.Task[object] | None = None

    async def refused() -> Recorded:
        await asyncio.sleep(0.01)  # reading meanwhile
        assert opening is not None
        asyncio.get_running_loop().call_soon(opening.cancel)  # the caller goes in the refusal's own turn
        raise refusal()

    opening = task = asyncio.ensure_future(early.open("alice", "m", model.chunks(), refused()))
    with pytest.raises(asyncio.CancelledError):  # the caller's own cancellation wins over the refusal
        await task
    assert model.closed


async def test_an_admission_not_started_when_the_read_was_cancelled_never_runs() -> None:
    early = EarlyAdmission()
    ran = False

    async def admitted() -> Recorded:
        nonlocal ran
        ran = True
        return Recorded()

    async def cancelled_at_once() -> AsyncIterator[ChatChunk]:
        raise asyncio.CancelledError  # before the admission's first turn of the event loop
        yield HELLO

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with pytest.raises(asyncio.CancelledError):
            await early.open("alice", "m", cancelled_at_once(), admitted())
        await asyncio.sleep(0.01)
        gc.collect()
    assert not ran  # nothing taken, nothing to give back
    assert not [w for w in warned if "never awaited" in str(w.message)]  # closed, not dropped


async def test_a_model_error_before_any_text_comes_after_the_admission() -> None:
    early, admission = EarlyAdmission(), Recorded()
    model = Model(error=ModelError("the model is down"))

    async def admitted() -> Recorded:
        return admission

    model.answer.set()
    got, chunks = await early.open("alice", "m", model.chunks(), admitted())
    assert got is admission
    with pytest.raises(ModelError, match="down"):
        await chunks.__anext__()
