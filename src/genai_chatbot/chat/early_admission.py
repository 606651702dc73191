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
from collections.abc import AsyncIterator, Coroutine
from typing import Any

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
        admitting: Coroutine[Any, Any, Admission | None],
    ) -> tuple[Admission | None, AsyncIterator[ChatChunk]]:
        """The admission, and `chunks` read up to their first text while it ran (given out again first).

        A refusal cancels the read, closes `chunks` and is raised. A model error before the first text is
        given out by the returned stream, so that the admission it belongs to is told how the request ended.
        """
        overlap = _Overlap(admitting)
        try:
            read = await read_until_text(chunks)  # closes `chunks` when it raises
        except asyncio.CancelledError:
            refused = overlap.stop_reading()
            if refused is not None and not overlap.cancelled_by_caller():
                self.refused(user_id, refused)  # refused while reading: `chunks` is closed, nothing given out
                raise refused from None
            with anyio.CancelScope(shield=True):  # the caller is cancelled: the request never ran
                await _abandon(model_id, overlap)
            raise
        except Exception as exc:  # the model failed (before any text): the stream says so after admission
            overlap.stop_reading()
            return await self._settled(user_id, overlap), _Failing(exc)
        except BaseException:
            overlap.stop_reading()
            with anyio.CancelScope(shield=True):
                await _abandon(model_id, overlap)
            raise
        refused = overlap.stop_reading()
        try:
            if refused is not None:  # refused after the read ended but before the cancellation reached it
                self.refused(user_id, refused)
                raise refused
            admission = await self._settled(user_id, overlap)
        except BaseException:
            await close_stream(chunks)
            raise
        return admission, Resumed(read, chunks)

    async def _settled(self, user_id: str, overlap: _Overlap) -> Admission | None:
        """The admission, or its refusal raised (and remembered: see `refused`)."""
        try:
            return await overlap.admission()
        except BaseException as exc:
            self.refused(user_id, exc)
            raise


class _Overlap:
    """An admission run beside the caller's read of the model, which a refusal interrupts.

    The admission starts one turn of the event loop later, so that the model's request is written first
    (aiohttp writes it in a task of its own, scheduled after the caller's turn), then does its work while
    the model answers. A refusal during the read cancels the reading task; `stop_reading` takes that
    cancellation back (`Task.uncancel`, as `asyncio.timeout` does) and says which refusal it was. The task's
    own cancellation rather than an anyio cancel scope, and the admission started by a callback rather than
    a task that first sleeps a turn: measured in-process, the overlap's cost fell from 24-31 to 20-22 µs.
    """

    def __init__(self, admitting: Coroutine[Any, Any, Admission | None]) -> None:
        self._admitting = admitting
        self._reader = asyncio.current_task()
        self._task: asyncio.Task[Admission | None] | None = None
        self._reading = True
        self._refused: BaseException | None = None  # the refusal that cancelled the reader
        self._start = asyncio.get_running_loop().call_soon(self._begin)

    def _begin(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._admitting)
        self._task.add_done_callback(self._ended)

    def _ended(self, done: asyncio.Task[Admission | None]) -> None:
        if not self._reading or done.cancelled() or done.exception() is None or self._reader is None:
            return
        self._refused = done.exception()
        self._reader.cancel()

    def stop_reading(self) -> BaseException | None:
        """The read is over: a refusal no longer interrupts it. The refusal that cancelled it, if one did."""
        self._reading = False
        if self._refused is not None and self._reader is not None:
            self._reader.uncancel()
        return self._refused

    def cancelled_by_caller(self) -> bool:
        """Whether the reading task is cancelled by someone else too (once the refusal's cancellation is taken
        back): the caller's cancellation then wins over the refusal."""
        return self._reader is not None and self._reader.cancelling() > 0

    async def admission(self) -> Admission | None:
        """The admission's result (its refusal raised); run here when it had not started yet."""
        if self._task is None:
            self._start.cancel()
            return await self._admitting
        return await self._task

    def drop(self) -> bool:
        """Never run the admission, if it has not started (True): nothing was taken, nothing to tell."""
        if self._task is not None:
            return False
        self._start.cancel()
        self._admitting.close()
        return True


async def _abandon(model_id: str, overlap: _Overlap) -> None:
    """Let the admission end (it may have taken a request slot) and tell it the request never ran."""
    if overlap.drop():
        return
    try:
        admission = await overlap.admission()
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
