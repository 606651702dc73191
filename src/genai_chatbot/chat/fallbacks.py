"""Retries and fallbacks: a model that fails before its first token is retried, then replaced by its fallbacks.

`[models."ID"] fallbacks = [...]` names, in order, the models that answer in a model's place when it is
throttled (`RateLimitedError`), unavailable (`ProviderUnavailableError`) or failing (`ProviderError`) before
it sent any text. Once text has been sent an error ends the answer as before: one model's half answer is
never continued by another. Before a model is given up, a throttled or failing one is retried `[retries]
attempts` times with exponential backoff and full jitter, or after the provider's `Retry-After` when it
gave one, as long as the wait ends within `deadline_seconds` of the request's start. An unavailable model
is not retried: a missing key or a closed port does not come back within seconds. Past the deadline each
remaining fallback still gets one try, without waiting.

Only models with a `[models."ID"]` table come through here (an empty `fallbacks` list means retries only);
every other model's stream is the provider's own, with no wrapper on the hot path.

The governor admits each fallback as it admitted the requested model, so a caller never gets a model they
may not use: a fallback it refuses is skipped. Every model tried reports its own outcome: usage and metrics
show a failed request of the model that failed and the answer under the model that gave it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

import anyio

from genai_chatbot.chat.governed import GovernedStream, report
from genai_chatbot.governance.errors import GovernanceError, ModelNotAllowedError
from genai_chatbot.governance.gate import Admission
from genai_chatbot.governance.settings import ModelPolicy, RetrySettings
from genai_chatbot.models.errors import (
    ModelError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
from genai_chatbot.models.types import ChatChunk, ChatResult, ModelInfo

if TYPE_CHECKING:
    from genai_chatbot.chat.requests import PreparedChat

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Errors before the first token that hand the request to the next model; the first two are retried first.
REPLACED = (RateLimitedError, ProviderError, ProviderUnavailableError)
RETRIED = (RateLimitedError, ProviderError)

#: Another model for the same request (its own defaults and context window); raises `ModelError` when it
#: cannot take it (unknown, unavailable, the conversation does not fit).
Prepare = Callable[[str], Awaitable["PreparedChat"]]
#: The governor's admission of a prepared request (`None`: nothing to report to); raises when refused.
Admit = Callable[["PreparedChat"], Awaitable[Admission | None]]


@dataclass(frozen=True)
class RetryPlan:
    """`[retries]`: how often and how long a model is retried before its fallbacks are tried."""

    attempts: int = 2
    deadline_seconds: float = 20.0
    backoff_seconds: float = 0.5
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, retry: int, error: ModelError, remaining: float) -> float | None:
        """Seconds to wait before retry number `retry` (0 first) after `error`, or `None`: give the model up.

        Full jitter: a uniform wait in [0, backoff * 2^retry], so that many clients throttled at once do
        not come back at once. A `retry_after` the provider sent is waited instead, and only when it ends
        within the `remaining` seconds of the deadline.
        """
        if retry >= self.attempts or not isinstance(error, RETRIED):
            return None
        retry_after: float | None = getattr(error, "retry_after", None)
        wait = retry_after if retry_after is not None else self.random() * self.backoff_seconds * 2**retry
        return max(0.0, wait) if wait <= remaining else None


@dataclass(frozen=True)
class FallbackPlan:
    """Which models have fallbacks (and retries), and the retry rules: the `[models]` and `[retries]` settings."""

    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    retries: RetryPlan = field(default_factory=RetryPlan)

    @classmethod
    def from_settings(cls, models: Mapping[str, ModelPolicy], retries: RetrySettings) -> FallbackPlan:
        return cls(
            {model_id: tuple(policy.fallbacks) for model_id, policy in models.items()},
            RetryPlan(retries.attempts, retries.deadline_seconds, retries.backoff_seconds),
        )


NO_FALLBACKS = FallbackPlan()


class Attempts:
    """The requested model, then its fallbacks, each retried by the plan, until one answers.

    `admission` is the requested model's (already admitted); `prepare` and `admit` make and admit the
    request of a fallback.
    """

    def __init__(
        self,
        first: PreparedChat,
        admission: Admission | None,
        fallbacks: Sequence[str],
        plan: RetryPlan,
        prepare: Prepare,
        admit: Admit,
    ) -> None:
        #: The model answering now; once the request ended, the one that answered (or the requested one).
        self.model_id = first.model.id
        self._first = first
        self._fallbacks = fallbacks
        self._plan = plan
        self._prepare = prepare
        self._admit = admit
        #: When the request started (`time.perf_counter()`): its time to first token counts from here.
        self.started = time.perf_counter()
        #: The admission of the model being tried, until its outcome is reported or handed on.
        self._pending = admission

    async def run(self, attempt: Callable[[PreparedChat, Admission | None], Awaitable[T]]) -> T:
        """The result of `attempt` with the first model that gives one; `attempt` reports a success itself."""
        try:
            return await self._run(attempt)
        except BaseException as exc:
            await self.release("failed" if isinstance(exc, ModelError) else "cancelled", exc)
            raise

    async def _run(self, attempt: Callable[[PreparedChat, Admission | None], Awaitable[T]]) -> T:
        deadline = self.started + self._plan.deadline_seconds
        tried: list[str] = []
        first_error: ModelError | None = None
        for index, model_id in enumerate((self._first.model.id, *self._fallbacks)):
            prepared = await self._next_model(model_id, tried) if index else self._first
            if prepared is None:
                continue
            self.model_id = model_id
            for retry in range(self._plan.attempts + 1):
                try:
                    if not prepared.model.available:  # the requested model; a fallback's prepare refuses it
                        raise ProviderUnavailableError(unavailable(prepared.model))
                    result = await attempt(prepared, self._pending)
                    self._pending = None  # reported by `attempt`, or handed on with its result
                    return result
                except REPLACED as exc:
                    error = exc
                wait = self._plan.delay(retry, error, deadline - time.perf_counter())
                if wait is None:
                    break
                logger.info("%s failed before its first token (%s); retrying in %.2f s.", model_id, error, wait)
                await asyncio.sleep(wait)
            await self.release("failed", error)
            first_error = first_error or error
            tried.append(f"{model_id} ({error.message.rstrip('.')})")
        self.model_id = self._first.model.id
        assert first_error is not None  # the requested model is always tried
        raise _exhausted(first_error, tried)

    async def _next_model(self, model_id: str, tried: list[str]) -> PreparedChat | None:
        """The request prepared for fallback `model_id` and admitted, or `None` when it cannot take it."""
        try:
            prepared = await self._prepare(model_id)
            self._pending = await self._admit(prepared)
        except (ModelError, GovernanceError) as exc:
            logger.info("Fallback %s skipped: %s", model_id, exc)
            tried.append(f"{model_id} (skipped: {_why_skipped(exc)})")
            return None
        logger.info("Falling back to %s.", model_id)
        return prepared

    async def release(self, status: str, error: BaseException) -> None:
        """Report the model being tried as ended without an answer (nothing used)."""
        admission, self._pending = self._pending, None
        if admission is not None:
            error_type = error.kind if isinstance(error, ModelError) else None
            elapsed = time.perf_counter() - self.started
            await report(admission, self.model_id, status, None, elapsed, error_type=error_type)


def unavailable(model: ModelInfo) -> str:
    return f"Model {model.id!r} is unavailable: {model.unavailable_reason}"


def _why_skipped(exc: ModelError | GovernanceError) -> str:
    """Why a fallback was not tried, in a few words that name no other model (the caller may not see them)."""
    if isinstance(exc, ModelNotFoundError):
        return "no such model is configured"
    if isinstance(exc, ModelNotAllowedError):
        return "not allowed to you"
    return exc.message.rstrip(".")


def _exhausted(first_error: ModelError, tried: list[str]) -> ModelError:
    """The requested model's error, saying what every model tried did (the API answers with its status)."""
    error = copy.copy(first_error)
    if len(tried) > 1:
        error.message = f"No model answered: {'; '.join(tried)}."
        error.args = (error.message,)
    return error


class FallbackStream:
    """The chunks of the first model of the plan that sends text; `model_id` says which one that is.

    Nothing is asked of a provider until the first chunk is awaited (or `start()`); `aclose()` before
    then reports the admitted request as cancelled, like a `GovernedStream`.
    """

    def __init__(self, attempts: Attempts) -> None:
        self._attempts = attempts
        self._chunks: AsyncIterator[ChatChunk] | None = None
        self._next: Callable[[], Awaitable[ChatChunk]] = self._first_chunk

    @property
    def model_id(self) -> str:
        """The model answering (while one is tried: that one; after all failed: the requested one)."""
        return self._attempts.model_id

    def __aiter__(self) -> FallbackStream:
        return self

    async def __anext__(self) -> ChatChunk:
        return await self._next()

    async def start(self) -> None:
        """Return once a model sent its first text (or ended its answer); raise the error when none did."""
        if self._chunks is not None:
            return
        self._next = _ended  # whatever happens, the models are tried once
        self._chunks = await self._attempts.run(self._opened)
        self._next = self._chunks.__anext__

    async def _first_chunk(self) -> ChatChunk:
        await self.start()
        return await self._next()

    async def _opened(self, prepared: PreparedChat, admission: Admission | None) -> AsyncIterator[ChatChunk]:
        """The model's stream, once its first text arrived (read ahead and kept), observed for the governor."""
        chunks = prepared.provider.stream(prepared.request)
        resumed = Resumed(await read_until_text(chunks), chunks)
        if admission is None:
            return resumed
        return GovernedStream(resumed, admission, prepared.model.id, started=self._attempts.started)

    async def aclose(self) -> None:
        """Close the answering model's stream; before one answered, report the request cancelled."""
        self._next = _ended
        if self._chunks is not None:
            await close_stream(self._chunks)
        else:
            await self._attempts.release("cancelled", asyncio.CancelledError())


async def read_until_text(chunks: AsyncIterator[ChatChunk]) -> list[ChatChunk]:
    """The chunks of `chunks` up to its first text (or its end), read ahead: an error before it is raised
    here (`chunks` closed), so a response can still answer with the error's HTTP status."""
    read: list[ChatChunk] = []
    try:
        while not read or not read[-1].text:
            try:
                read.append(await chunks.__anext__())
            except StopAsyncIteration:
                break  # an empty answer is an answer
    except BaseException:
        await close_stream(chunks)
        raise
    return read


async def complete_with_fallbacks(attempts: Attempts) -> ChatResult:
    """The whole reply of the first model of the plan that gives one, its `model_id` saying which."""

    async def attempt(prepared: PreparedChat, admitted: Admission | None) -> ChatResult:
        result = await prepared.provider.complete(prepared.request)
        if admitted is not None:
            elapsed = time.perf_counter() - attempts.started
            await report(admitted, prepared.model.id, "complete", result.usage, elapsed, elapsed)
        return replace(result, model_id=prepared.model.id)

    return await attempts.run(attempt)


class Resumed:
    """The chunks read while waiting for the first text, then the rest of the model's stream."""

    def __init__(self, read: list[ChatChunk], chunks: AsyncIterator[ChatChunk]) -> None:
        self._read = deque(read)
        self._chunks = chunks

    def __aiter__(self) -> Resumed:
        return self

    async def __anext__(self) -> ChatChunk:
        if self._read:
            return self._read.popleft()
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await close_stream(self._chunks)


async def _ended() -> ChatChunk:
    raise StopAsyncIteration


async def close_stream(chunks: AsyncIterator[ChatChunk]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        with anyio.CancelScope(shield=True):
            await close()
