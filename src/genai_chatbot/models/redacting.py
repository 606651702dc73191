"""The one boundary where provider messages are cleaned of secrets, below everything that shows them.

Providers word their own errors and often quote what their SDK said, and an upstream may echo what it was
sent: a key in a 401 message, a base URL with `user:password@` in a connection error. `RedactingProvider`
wraps a provider so that every `ModelError` it raises, and every reason it gives for an unavailable model,
has the values of the keys secret (as the registry reads them now) and any URL credentials masked. The
chat service, the API, the stored history and the logs above it only ever see the masked text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence

from genai_chatbot.models.errors import ModelError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.types import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    Diagnosis,
    EmbeddingRequest,
    EmbeddingResult,
    Message,
    ModelInfo,
)
from genai_chatbot.secrets import ProviderKeys


def redact_error(exc: ModelError, keys: ProviderKeys) -> None:
    """Mask `exc`'s message in place: the caller re-raises the same error, type, status and fields kept."""
    masked = keys.redact(exc.message)
    if masked != exc.message:
        exc.message = masked
        exc.args = (masked,)


class RedactingProvider(Provider):
    """`inner`, with secrets masked out of everything it says; see the module docstring."""

    def __init__(self, inner: Provider, keys: ProviderKeys) -> None:
        self.inner = inner
        self.name = inner.name
        self.enabling_keys = inner.enabling_keys
        self._keys = keys

    def __repr__(self) -> str:
        return f"RedactingProvider({self.inner.name!r})"

    async def list_models(self) -> list[ModelInfo]:
        try:
            models = await self.inner.list_models()
        except ModelError as exc:
            redact_error(exc, self._keys)
            raise
        return [self._masked_info(m) for m in models]

    def _masked_info(self, info: ModelInfo) -> ModelInfo:
        if info.unavailable_reason is None:
            return info
        reason = self._keys.redact(info.unavailable_reason)
        return info if reason == info.unavailable_reason else dataclasses.replace(info, unavailable_reason=reason)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        chunks = self.inner.stream(request)
        try:
            async for chunk in chunks:
                yield chunk
        except ModelError as exc:
            redact_error(exc, self._keys)
            raise
        finally:
            # Closing this stream must stop the provider's at once, not when the garbage collector runs.
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    async def complete(self, request: ChatRequest) -> ChatResult:
        try:
            return await self.inner.complete(request)
        except ModelError as exc:
            redact_error(exc, self._keys)
            raise

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        try:
            return await self.inner.embed(request)
        except ModelError as exc:
            redact_error(exc, self._keys)
            raise

    async def count_tokens(self, model: str, system: str | None, messages: Sequence[Message]) -> list[int]:
        try:
            return await self.inner.count_tokens(model, system, messages)
        except ModelError as exc:
            redact_error(exc, self._keys)
            raise

    async def diagnose(self) -> list[Diagnosis]:
        rows = await self.inner.diagnose()
        return [
            dataclasses.replace(
                row, detail=self._keys.redact(row.detail), fix=self._keys.redact(row.fix) if row.fix else row.fix
            )
            for row in rows
        ]

    async def refresh(self) -> None:
        await self.inner.refresh()

    async def aclose(self) -> None:
        await self.inner.aclose()
