"""The contract every provider module implements.

A provider knows one SDK or wire protocol and nothing else: it lists the models it can serve, and turns a
`ChatRequest` into a stream of `ChatChunk`s, translating its SDK's errors into `genai_chatbot.models.errors`.
Adding a provider means adding one module under `providers/` and one entry in the registry's table.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from typing import Any

from genai_chatbot.models.errors import InvalidRequestError, ModelError
from genai_chatbot.models.tool_calls import ToolCallGatherer
from genai_chatbot.models.types import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    Diagnosis,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    ImagePart,
    Message,
    ModelInfo,
    Usage,
)

# A rough but safe bytes-per-token for providers that cannot count: English text averages about four
# characters a token, so three over-counts a little and keeps trimmed histories inside the window.
_CHARS_PER_TOKEN_ESTIMATE = 3
_TOKENS_PER_MESSAGE_OVERHEAD = 4
# An image's share of the window, on the safe side: Claude counts about 1,600 tokens for a 1-megapixel
# image, OpenAI at most about 1,100 for a high-detail one.
_IMAGE_TOKENS_ESTIMATE = 1600


class Provider(abc.ABC):
    """One source of models, e.g. the embedded llama.cpp model or an OpenAI-compatible endpoint."""

    #: The `provider` part of model ids served by this provider.
    name: str
    #: Names of keys in the keys secret that turn this provider on (shown by `doctor`, never their values).
    enabling_keys: tuple[str, ...] = ()

    @abc.abstractmethod
    async def list_models(self) -> list[ModelInfo]:
        """Every model this provider is configured for, including unavailable ones with their reason."""

    @abc.abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Stream one reply.

        The iterator yields text chunks and ends with a chunk that carries `finish_reason`. A consumer that
        stops iterating (closes the generator) must make the provider stop generating.
        """

    async def complete(self, request: ChatRequest) -> ChatResult:
        """Generate one whole reply; by default by gathering `stream`."""
        parts: list[str] = []
        finish: FinishReason = "stop"
        usage: Usage | None = None
        calls = ToolCallGatherer()
        logprobs: list[Any] = []
        async for chunk in self.stream(request):
            if chunk.text:
                parts.append(chunk.text)
            if chunk.tool_calls:
                calls.add(chunk.tool_calls)
            if chunk.logprobs is not None:
                logprobs.extend(chunk.logprobs.get("content") or ())
            if chunk.finish_reason is not None:
                finish = chunk.finish_reason
            if chunk.usage is not None:
                usage = chunk.usage
        return ChatResult(
            text="".join(parts),
            finish_reason=finish,
            usage=usage,
            tool_calls=calls.calls(),
            logprobs={"content": logprobs} if logprobs else None,
        )

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embed texts with one of this provider's embedding models (those listing the feature "embeddings").

        The chat service calls it only for such models; the default refuses, for providers that have none.
        """
        raise InvalidRequestError(
            f"Provider {self.name!r} has no embedding models; use a model that GET /v1/models lists for embeddings.",
            param="model",
        )

    async def count_tokens(self, model: str, system: str | None, messages: Sequence[Message]) -> list[int]:
        """Token counts of `system` (first item, 0 when absent) and then of each message.

        Used to trim histories to the context window. The default estimates from length; providers that
        hold a tokenizer override it with exact counts.
        """
        texts = [system or "", *(m.content for m in messages)]
        counts = [
            (len(t) // _CHARS_PER_TOKEN_ESTIMATE + _TOKENS_PER_MESSAGE_OVERHEAD) if t or i else 0
            for i, t in enumerate(texts)
        ]
        for i, message in enumerate(messages, start=1):
            if message.parts:  # images are no text, but they take room in the window
                counts[i] += _IMAGE_TOKENS_ESTIMATE * sum(isinstance(part, ImagePart) for part in message.parts)
        return counts

    async def diagnose(self) -> list[Diagnosis]:
        """Check this provider for `doctor`; by default from its model list. Providers add their own checks."""
        try:
            models = await self.list_models()
        except ModelError as exc:
            return [Diagnosis(self.name, "error", exc.message)]
        if not models:
            if self.enabling_keys:
                fix = f"add {' or '.join(self.enabling_keys)} to the keys secret to enable it"
                return [Diagnosis(self.name, "off", "not enabled: no key", fix)]
            return [Diagnosis(self.name, "off", "no models configured")]
        usable = sum(1 for m in models if m.available)
        rows = [Diagnosis(self.name, "ok" if usable else "error", f"{usable} of {len(models)} models available")]
        rows.extend(Diagnosis(m.id, "error", m.unavailable_reason or "unavailable") for m in models if not m.available)
        return rows

    async def refresh(self) -> None:  # noqa: B027 - optional hook
        """Forget cached model lists so the next `list_models` asks the provider again."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing to close
        """Release clients and loaded models."""
