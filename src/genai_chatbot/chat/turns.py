"""A turn in flight: its answer is stored `streaming` before the first chunk and finalised exactly once.

`ChatService` stores the start of a turn (the user's message and the `streaming` answer, one transaction)
and hands back a `Turn`. Iterating it streams the events; whatever way it ends — the model finishes, fails,
the consumer leaves (`aclose()`, also when it never iterated), or the server stops (`stop()`) — one UPDATE
writes the answer's final text and status. Nothing is written per chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import anyio

from genai_chatbot.chat.records import MessageStatus, StoredMessage
from genai_chatbot.chat.stopping import StoppableStream
from genai_chatbot.chat.store import HistoryStore
from genai_chatbot.models.errors import ModelError
from genai_chatbot.models.types import ChatChunk, Usage

logger = logging.getLogger(__name__)

CANCELLED_ERROR = "Cancelled before the answer was complete."
SHUTDOWN_ERROR = "The server shut down before the answer was complete; Retry generates it again."
INTERNAL_ERROR = "Internal error while generating the answer; the server log has the details."


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """The user's message is stored; the answer is stored (`streaming`) under `assistant_message_id`."""

    user_message: StoredMessage
    assistant_message_id: str


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The answer as stored: complete, failed (with `error`) or cancelled."""

    message: StoredMessage


TurnEvent = TurnStarted | ChatChunk | TurnEnded


class Turn:
    """The events of one stored turn: `TurnStarted`, the model's chunks, then `TurnEnded`.

    A caller that stops iterating early must call `aclose()` (the API does so whatever happens to the
    response); the answer is then stored `cancelled` with the text generated so far.
    """

    def __init__(
        self,
        store: HistoryStore,
        started: TurnStarted,
        answer: StoredMessage,
        chunks: AsyncIterator[ChatChunk],
        on_end: Callable[[Turn], None],
        answered_by: Callable[[], str] | None = None,
        count_usage: Callable[[str], Awaitable[Usage]] | None = None,
    ) -> None:
        """`answered_by` says which model gave the answer when it may not be the one asked (fallbacks);
        `count_usage` counts a complete answer's tokens when the model reported none."""
        self.started = started
        self._count_usage = count_usage
        self._answered_by = answered_by
        self._store = store
        self._answer = answer
        self._chunks = StoppableStream(chunks)
        self._on_end = on_end
        self._final: StoredMessage | None = None
        self._parts: list[str] = []
        self._usage: Usage | None = None
        self._clock = time.perf_counter()
        self._events = self._run()

    def __aiter__(self) -> Turn:
        return self

    async def __anext__(self) -> TurnEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop the turn; unless it already ended, its answer is stored `cancelled` with its text so far."""
        with anyio.CancelScope(shield=True):
            try:
                await self._events.aclose()
            finally:
                await self._chunks.aclose()  # also when iteration never began
                await self._end("cancelled", CANCELLED_ERROR)

    def stop(self) -> None:
        """End the turn at once because the server is stopping; callable from any thread (signal handlers).

        The model's stream is cancelled, the answer stored `cancelled` with its text, and the consumer
        receives `TurnEnded`, so a streamed response finishes normally instead of being cut off.
        """
        self._chunks.stop()

    async def _run(self) -> AsyncGenerator[TurnEvent, None]:
        yield self.started
        error: str | None = None
        try:
            async for chunk in self._chunks:
                if chunk.usage is not None:
                    self._usage = chunk.usage
                if chunk.text:
                    self._parts.append(chunk.text)
                yield chunk
        except ModelError as exc:
            error = exc.message
        except Exception:
            logger.exception("Turn in session %s failed", self._answer.session_id)
            error = INTERNAL_ERROR
        except BaseException:
            # The consumer went away (client disconnected, Stop pressed): keep what was generated.
            await self._end("cancelled", CANCELLED_ERROR)
            raise
        finally:
            await self._chunks.aclose()
        if self._chunks.stopped and error is None:
            message = await self._end("cancelled", SHUTDOWN_ERROR)
        else:
            message = await self._end("failed" if error else "complete", error)
        yield TurnEnded(message)

    async def _end(self, status: MessageStatus, error: str | None) -> StoredMessage:
        """Store the answer's final state, once: later calls return the first result."""
        if self._final is not None:
            return self._final
        usage = self._usage
        if usage is None and status == "complete" and self._count_usage is not None:
            usage = await self._count_usage("".join(self._parts))
            if self._final is not None:  # ended meanwhile (closed while counting)
                return self._final
        self._final = message = replace(
            self._answer,
            model_id=self._answered_by() if self._answered_by is not None else self._answer.model_id,
            content="".join(self._parts),
            status=status,
            error=error,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            latency_ms=round((time.perf_counter() - self._clock) * 1000, 1),
        )
        self._on_end(self)
        with anyio.CancelScope(shield=True):
            stored = await self._store.finish_message(message)
        if not stored:
            logger.info(
                "The %s answer %s was not stored: session %s was deleted while it was generated.",
                status,
                message.id,
                message.session_id,
            )
        return message
