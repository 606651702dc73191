"""A model's stream observed for the governor: how it ended, its usage and timings, reported once.

The service wraps a provider's chunks in `governed_stream` after the governor admitted the request, so
every surface is counted the same way. It is a class, not an async generator, so that closing it before
its first chunk (a turn refused after admission, a client gone at once) still reports the outcome.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from typing import Protocol, TypeVar

import anyio

from genai_chatbot.governance.gate import Admission, Outcome
from genai_chatbot.models.errors import ModelError
from genai_chatbot.models.types import ChatChunk, Usage


class GovernedStream:
    """`chunks`, reporting to `admission` once when they end: complete, failed or cancelled."""

    def __init__(
        self, chunks: AsyncIterator[ChatChunk], admission: Admission, model_id: str, started: float | None = None
    ) -> None:
        """`started` is the `time.perf_counter()` the request started at, when earlier than now (fallbacks)."""
        self._chunks = chunks
        self._next = chunks.__anext__  # bound once: this runs for every chunk of every governed stream
        self._admission = admission
        self._model_id = model_id
        self._clock = time.perf_counter() if started is None else started
        self._first_token: float | None = None
        self._usage: Usage | None = None
        self._reported = False

    def __aiter__(self) -> GovernedStream:
        return self

    async def __anext__(self) -> ChatChunk:
        try:
            chunk = await self._next()
        except StopAsyncIteration:
            await self._report("complete")
            raise
        except ModelError as exc:
            await self._report("failed", exc.kind)
            raise
        if chunk.usage is not None:
            self._usage = chunk.usage
        if self._first_token is None and chunk.text:
            self._first_token = time.perf_counter() - self._clock
        return chunk

    async def aclose(self) -> None:
        """Close the model's stream; unless it ended already, report it cancelled."""
        try:
            close = getattr(self._chunks, "aclose", None)
            if close is not None:
                if self._reported:  # the model's stream ended: closing it has nothing to wait for
                    await close()
                else:
                    with anyio.CancelScope(shield=True):
                        await close()
        finally:
            await self._report("cancelled")

    async def _report(self, status: str, error_type: str | None = None) -> None:
        if self._reported:
            return
        self._reported = True
        elapsed = time.perf_counter() - self._clock
        await report(self._admission, self._model_id, status, self._usage, elapsed, self._first_token, error_type)


def governed_stream(chunks: AsyncIterator[ChatChunk], admission: Admission, model_id: str) -> GovernedStream:
    return GovernedStream(chunks, admission, model_id)


class _Used(Protocol):
    """A whole result that says what it used: a chat reply, or an embeddings result."""

    @property
    def usage(self) -> Usage | None: ...


Result = TypeVar("Result", bound=_Used)


async def governed_complete(
    reply: Awaitable[Result], admission: Admission, model_id: str, *, generates: bool = True
) -> Result:
    """The awaited `reply` of a non-streamed request, reported to `admission` however it ends.

    `generates` is false for a call that produces no tokens (embeddings): it has no time to a first token.
    """
    clock = time.perf_counter()
    status, usage, error_type = "cancelled", None, None
    try:
        result = await reply
        status, usage = "complete", result.usage
        return result
    except ModelError as exc:
        status, error_type = "failed", exc.kind
        raise
    finally:
        elapsed = time.perf_counter() - clock
        first_token = elapsed if status == "complete" and generates else None
        await report(admission, model_id, status, usage, elapsed, first_token, error_type)


async def report(
    admission: Admission,
    model_id: str,
    status: str,
    usage: Usage | None,
    elapsed: float,
    first_token: float | None = None,
    error_type: str | None = None,
) -> None:
    """Tell `admission` how the request ended; shielded, so a cancelled caller still reports."""
    outcome = Outcome(
        model_id=model_id,
        status=status,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        latency_seconds=elapsed,
        first_token_seconds=first_token,
        error_type=error_type,
    )
    with anyio.CancelScope(shield=True):
        await admission.finish(outcome)
