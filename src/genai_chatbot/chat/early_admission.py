"""Admission side by side with the model's first token, for governors whose admission waits on a store.

Budgets and rate limits are one store transaction per request (SQLite on this machine: about 0.05 ms; a
PostgreSQL or DynamoDB round trip: 0.5 to 2 ms). Waited for before the model is asked, that time adds to
every first token. Here the model's stream is opened at once, in the caller's task, while the admission
runs in a task of its own; nothing of the answer is given out, stored or counted before the admission
says yes, and a refusal cancels the model's request at once, before its first token is read.

The cost of that overlap is a request sent to the model that a refusal then cancels, so it is only taken
(`EarlyAdmission.allows`):
- for a model the caller may use (model access is local and checked first: a prompt never reaches a
  model an admin's policy keeps from the caller, even for a moment);
- for a caller not refused a budget or rate limit lately (until the refusal's reset time, at most an
  hour): an over-limit caller's requests wait for their admission, so one who keeps sending them costs
  the upstream nothing;
- when this process has few streams in flight: under load the CPU, not the wait, bounds the first token,
  and a task per request would only add work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable

import anyio

from genai_chatbot.chat.fallbacks import Resumed, close_stream, read_until_text
from genai_chatbot.chat.governed import report
from genai_chatbot.governance.errors import LimitReachedError
from genai_chatbot.governance.gate import Admission
from genai_chatbot.models.types import ChatChunk

#: Overlap only while fewer streams than this are in flight in the process.
MAX_IN_FLIGHT = 4
#: The longest a refused caller waits for their admissions (their refusal's reset time, when sooner).
HOLD_BACK_SECONDS = 3600.0
_MAX_HELD_BACK = 10_000


class EarlyAdmission:
    """Which callers' requests may open the model before their admission ends; see the module docstring."""

    def __init__(self) -> None:
        self._held_back: dict[str, float] = {}  # user id -> monotonic time until which they wait

    def allows(self, user_id: str, in_flight: int) -> bool:
        if in_flight >= MAX_IN_FLIGHT:
            return False
        until = self._held_back.get(user_id)
        if until is None:
            return True
        if time.monotonic() < until:
            return False
        del self._held_back[user_id]
        return True

    def refused(self, user_id: str, error: BaseException) -> None:
        """`user_id` was refused: a budget or rate limit holds their next requests back until it resets."""
        if not isinstance(error, LimitReachedError):
            return
        if len(self._held_back) >= _MAX_HELD_BACK:
            self._held_back.clear()
        wait = min(float(error.retry_after_seconds), HOLD_BACK_SECONDS)
        self._held_back[user_id] = time.monotonic() + wait

    async def open(
        self,
        user_id: str,
        model_id: str,
        chunks: AsyncIterator[ChatChunk],
        admitting: Awaitable[Admission | None],
    ) -> tuple[Admission | None, AsyncIterator[ChatChunk]]:
        """The admission, and `chunks` read up to their first text while it ran (given out again first).

        A refusal cancels the read, closes `chunks` and is raised. A model error before the first text is
        given out by the returned stream, so that the admission it belongs to is told how the request ended.
        """
        admission_task = asyncio.ensure_future(_after_one_turn(admitting))
        with anyio.CancelScope() as reading:

            def stop_reading(done: asyncio.Future[Admission | None]) -> None:
                if not done.cancelled() and done.exception() is not None:
                    reading.cancel()  # a no-op once the read is over

            admission_task.add_done_callback(stop_reading)
            try:
                read = await read_until_text(chunks)  # closes `chunks` when it raises
            except Exception as exc:  # the model failed (before any text): the stream says so after admission
                return await self._settled(user_id, admission_task), _Failing(exc)
            except BaseException:  # the caller is cancelled: the admission is told the request never ran
                with anyio.CancelScope(shield=True):
                    await _abandon(model_id, admission_task)
                raise
            finally:
                admission_task.remove_done_callback(stop_reading)
        if reading.cancelled_caught:  # refused while reading: `chunks` is closed, nothing was given out
            await self._settled(user_id, admission_task)  # raises the refusal
            raise AssertionError("the read is only stopped by a refusal")
        try:
            admission = await self._settled(user_id, admission_task)
        except BaseException:
            await close_stream(chunks)
            raise
        return admission, Resumed(read, chunks)

    async def _settled(self, user_id: str, admission_task: asyncio.Future[Admission | None]) -> Admission | None:
        """The admission, or its refusal raised (and remembered: see `refused`)."""
        try:
            return await admission_task
        except BaseException as exc:
            self.refused(user_id, exc)
            raise


async def _after_one_turn(admitting: Awaitable[Admission | None]) -> Admission | None:
    """`admitting`, one turn of the event loop later: the model's request is written first (aiohttp writes it
    in a task of its own, scheduled after this one), then the admission's work, while the model answers."""
    await asyncio.sleep(0)
    return await admitting


async def _abandon(model_id: str, admission_task: asyncio.Future[Admission | None]) -> None:
    """Let the admission end (it may have taken a request slot) and tell it the request never ran."""
    try:
        admission = await admission_task
    except BaseException:
        return
    if admission is not None:
        await report(admission, model_id, "cancelled", None, 0.0)


class _Failing:
    """A stream whose first chunk is the error its model failed with before any text."""

    def __init__(self, error: Exception) -> None:
        self._error: Exception | None = error

    def __aiter__(self) -> _Failing:
        return self

    async def __anext__(self) -> ChatChunk:
        error, self._error = self._error, None
        if error is None:
            raise StopAsyncIteration
        raise error
