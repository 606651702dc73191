"""OpenAI, and self-hosted servers that speak its chat API (vLLM, TGI's messages API, llama.cpp server, Ollama).

Both talk through `openai_wire.OpenAIWire` (one pooled client per endpoint and key; fast streaming; error
translation). Keys are read from `ProviderKeys` at every list and stream, never captured: a changed key
builds a new client, and the old one closes once its last stream ends. The SDK is imported lazily.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from genai_chatbot.config import OpenAICompatibleEndpoint
from genai_chatbot.models.errors import ProviderUnavailableError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.providers.openai_wire import (
    ErrorContext,
    ListingCache,
    OpenAIWire,
    WireCache,
    chat_body,
    sdk_error,
)
from genai_chatbot.models.types import ChatChunk, ChatRequest, ChatResult, ModelInfo
from genai_chatbot.secrets import KeysSnapshot, ProviderKeys

OPENAI_API_KEY = "OPENAI_API_KEY"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_CONTEXT_WINDOW = 8192
# Longest matching prefix first: "gpt-4o" and "gpt-4.1" must win over "gpt-4".
_CONTEXT_WINDOWS = (
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("chatgpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4-32k", 32_768),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 16_385),
    ("gpt-5", 400_000),
    ("o1-mini", 128_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
)
_CHAT_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-")
# "instruct" models answer only the legacy completions API.
_NOT_CHAT = (
    "embedding",
    "tts",
    "whisper",
    "dall-e",
    "moderation",
    "realtime",
    "audio",
    "transcribe",
    "image",
    "instruct",
)
# A model listing only checks that the endpoint is there; it should not hang a model list for a minute.
_LIST_TIMEOUT_SECONDS = 10.0
_NO_KEY = "unused"  # the SDK insists on a key; servers started without one ignore it


def context_window(model: str) -> int:
    """The context window of a known OpenAI model family, else a conservative default."""
    for prefix, window in _CONTEXT_WINDOWS:
        if model.startswith(prefix):
            return window
    return DEFAULT_CONTEXT_WINDOW


def is_chat_model(model: str) -> bool:
    """Whether an id from OpenAI's model list is a chat model (not embeddings, speech, images, …)."""
    return model.startswith(_CHAT_PREFIXES) and not any(word in model for word in _NOT_CHAT)


# Providers -----------------------------------------------------------------------------------------


class OpenAIProvider(Provider):
    """OpenAI's own API, enabled while `OPENAI_API_KEY` is in the keys (`OPENAI_BASE_URL`, `OPENAI_ORG_ID` too)."""

    name = "openai"
    enabling_keys = ("OPENAI_API_KEY",)

    def __init__(self, keys: ProviderKeys, timeout_seconds: float = 60.0) -> None:
        self._keys = keys
        self._timeout = timeout_seconds
        self._wires = WireCache()
        self._listing = ListingCache()

    async def _wire(self, snapshot: KeysSnapshot) -> OpenAIWire | None:
        key = snapshot.get(OPENAI_API_KEY)
        if key is None:
            return None
        base = snapshot.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL
        org = snapshot.get("OPENAI_ORG_ID")

        def build() -> OpenAIWire:
            from openai import AsyncOpenAI

            ctx = ErrorContext("OpenAI", base, OPENAI_API_KEY, key, "this key may have no access to that model")
            auth = {"Authorization": f"Bearer {key}"}
            return OpenAIWire.build(AsyncOpenAI, ctx, self._timeout, auth, api_key=key, base_url=base, organization=org)

        return await self._wires.get("openai", (key, base, org), build)

    async def list_models(self) -> list[ModelInfo]:
        wire = await self._wire(await self._keys.current())
        if wire is None:
            return []

        async def fetch() -> tuple[list[ModelInfo], bool]:
            try:
                page = await wire.sdk.with_options(timeout=min(self._timeout, _LIST_TIMEOUT_SECONDS)).models.list()
            except Exception as exc:
                reason = sdk_error(wire.ctx, exc).message
                return [self._info("gpt-4o", reason)], False
            return [self._info(m.id) for m in sorted(page.data, key=lambda m: m.id) if is_chat_model(m.id)], True

        return await self._listing.get(wire, fetch)

    def _info(self, model: str, unavailable: str | None = None) -> ModelInfo:
        return ModelInfo(
            id=f"{self.name}/{model}",
            provider=self.name,
            name=model,
            display_name=model,
            context_window=context_window(model),
            available=unavailable is None,
            unavailable_reason=unavailable,
        )

    async def _require(self) -> OpenAIWire:
        wire = await self._wire(await self._keys.current())
        if wire is None:
            raise ProviderUnavailableError(f"OpenAI needs a key: add {OPENAI_API_KEY} to the keys secret.")
        return wire

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        wire = await self._require()
        async for chunk in wire.stream("chat/completions", chat_body(request.model, request, "max_completion_tokens")):
            yield chunk

    async def complete(self, request: ChatRequest) -> ChatResult:
        wire = await self._require()
        return await wire.complete(chat_body(request.model, request, "max_completion_tokens"))

    async def refresh(self) -> None:
        self._listing.clear()

    async def aclose(self) -> None:
        await self._wires.aclose()


class OpenAICompatibleProvider(Provider):
    """One self-hosted endpoint from `settings.openai_compatible`; its models are `<endpoint name>/<model>`."""

    def __init__(self, endpoint: OpenAICompatibleEndpoint, keys: ProviderKeys, timeout_seconds: float = 60.0) -> None:
        self.name = endpoint.name
        self._endpoint = endpoint
        self._base = endpoint.base_url.rstrip("/")
        self._keys = keys
        self._timeout = timeout_seconds
        self._wires = WireCache()
        self._listing = ListingCache()

    async def _wire(self) -> OpenAIWire | str:
        """The wire for the current key, or why there is none."""
        key_name = self._endpoint.api_key_name
        key = (await self._keys.current()).get(key_name) if key_name else None
        if key_name and key is None:
            return f"add {key_name} to the keys secret"

        def build() -> OpenAIWire:
            from openai import AsyncOpenAI

            ctx = ErrorContext(
                f"Endpoint {self.name!r}", self._base, key_name, key, f"is the model served at {self._base}?"
            )
            auth = {"Authorization": f"Bearer {key}"} if key else {}
            return OpenAIWire.build(AsyncOpenAI, ctx, self._timeout, auth, api_key=key or _NO_KEY, base_url=self._base)

        return await self._wires.get("endpoint", (key,), build)

    async def list_models(self) -> list[ModelInfo]:
        wire = await self._wire()
        if isinstance(wire, str):
            return self._infos(self._endpoint.models or [self.name], wire)

        async def fetch() -> tuple[list[ModelInfo], bool]:
            import openai

            try:
                page = await wire.sdk.with_options(timeout=min(self._timeout, _LIST_TIMEOUT_SECONDS)).models.list()
            except openai.APIStatusError as exc:
                if exc.status_code not in (401, 403) and self._endpoint.models:
                    return self._infos(self._endpoint.models), True  # it answered; it just lists nothing
                reason = sdk_error(wire.ctx, exc).message
                if exc.status_code not in (401, 403):
                    reason += "; list the endpoint's models in its `models` setting"
                return self._infos(self._endpoint.models or [self.name], reason), False
            except Exception as exc:
                return self._infos(self._endpoint.models or [self.name], sdk_error(wire.ctx, exc).message), False
            return self._infos(self._endpoint.models or sorted(m.id for m in page.data)), True

        return await self._listing.get(wire, fetch)

    def _infos(self, models: list[str], unavailable: str | None = None) -> list[ModelInfo]:
        label = self._endpoint.display_name or self.name
        return [
            ModelInfo(
                id=f"{self.name}/{model}",
                provider=self.name,
                name=model,
                display_name=f"{model} ({label})",
                context_window=self._endpoint.context_window,
                available=unavailable is None,
                unavailable_reason=unavailable,
                extra={"base_url": self._base},
            )
            for model in models
        ]

    async def _require(self) -> OpenAIWire:
        wire = await self._wire()
        if isinstance(wire, str):
            raise ProviderUnavailableError(f"Endpoint {self.name!r} needs a key: {wire}.")
        return wire

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        wire = await self._require()
        async for chunk in wire.stream("chat/completions", chat_body(request.model, request)):
            yield chunk

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await (await self._require()).complete(chat_body(request.model, request))

    async def refresh(self) -> None:
        self._listing.clear()

    async def aclose(self) -> None:
        await self._wires.aclose()
