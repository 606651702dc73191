"""OpenAI and OpenAI-style vendors (`openai_vendors.py`: Mistral, Groq, ...), and self-hosted servers that
speak OpenAI's chat API (vLLM, TGI's messages API, llama.cpp server, Ollama).

All talk through `openai_wire.OpenAIWire` (one pooled client per endpoint and key; fast streaming; error
translation). Keys are read from `ProviderKeys` at every list and stream, never captured: a changed key
builds a new wire, and the old one closes once its last stream ends (`_clients.ClientCache`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from genai_chatbot.config import OpenAICompatibleEndpoint
from genai_chatbot.models.errors import ProviderUnavailableError
from genai_chatbot.models.features import OPENAI_PROTOCOL
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.provider_spec import ProviderSpec
from genai_chatbot.models.providers._clients import ClientCache
from genai_chatbot.models.providers._http_errors import key_refused
from genai_chatbot.models.providers.openai_capabilities import openai_model_info, takes_images
from genai_chatbot.models.providers.openai_embeddings import embed_over
from genai_chatbot.models.providers.openai_vendors import OPENAI, OpenAIVendor
from genai_chatbot.models.providers.openai_wire import (
    ErrorContext,
    ListingCache,
    OpenAIWire,
    chat_body,
    close_wire,
)
from genai_chatbot.models.types import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
    ModelInfo,
)
from genai_chatbot.secrets import KeysSnapshot, ProviderKeys

# A model listing only checks that the endpoint is there; it should not hang a model list for a minute.
_LIST_TIMEOUT_SECONDS = 10.0

#: The context window of a known OpenAI model family, else a conservative default.
context_window = OPENAI.context_window
#: Whether an id from OpenAI's model list is a chat model (not embeddings, speech, images, …).
is_chat_model = OPENAI.is_chat_model


# Providers -----------------------------------------------------------------------------------------


class OpenAIProvider(Provider):
    """An OpenAI-style vendor's API (OpenAI's own by default), enabled while the vendor's key is in the keys.

    Everything vendor-specific is in its `OpenAIVendor`: name, base URL (overridable by `<NAME>_BASE_URL`),
    key name, model filter, label and context windows.
    """

    def __init__(self, keys: ProviderKeys, timeout_seconds: float = 60.0, vendor: OpenAIVendor = OPENAI) -> None:
        self.vendor = vendor
        self.name = vendor.name
        self.enabling_keys = (vendor.key_name,)
        self._keys = keys
        self._timeout = timeout_seconds
        self._wires: ClientCache[OpenAIWire] = ClientCache(close_wire, blocking_build=False)
        self._listing = ListingCache()

    def _wire(self, snapshot: KeysSnapshot) -> AbstractAsyncContextManager[OpenAIWire]:
        vendor = self.vendor
        key = snapshot.get(vendor.key_name)
        if key is None:
            raise ProviderUnavailableError(f"{vendor.label} needs a key: add {vendor.key_name} to the keys secret.")
        base = snapshot.get(vendor.base_url_key) or vendor.base_url
        org = snapshot.get(vendor.organization_key) if vendor.organization_key else None

        def build() -> OpenAIWire:
            ctx = ErrorContext(vendor.label, base, vendor.key_name, key, "this key may have no access to that model")
            headers = {"Authorization": f"Bearer {key}"} | ({"OpenAI-Organization": org} if org else {})
            return OpenAIWire(base, headers, ctx, self._timeout)

        return self._wires.lease(self.name, (key, base, org), build)

    async def list_models(self) -> list[ModelInfo]:
        snapshot = await self._keys.current()
        if snapshot.get(self.vendor.key_name) is None:
            return []
        async with self._wire(snapshot) as wire:

            async def fetch() -> tuple[list[ModelInfo], bool]:
                listing = await wire.list_ids(min(self._timeout, _LIST_TIMEOUT_SECONDS))
                if listing.error is not None:
                    return [self._info(self.vendor.listing_fallback or self.name, listing.error.message)], False
                vendor = self.vendor
                usable = (m for m in listing.ids if vendor.is_chat_model(m) or vendor.is_embedding_model(m))
                return [self._info(model) for model in usable], True

            return await self._listing.get(wire, fetch)

    def _info(self, model: str, unavailable: str | None = None) -> ModelInfo:
        return openai_model_info(
            self.name,
            model,
            embeddings=self.vendor.is_embedding_model(model),
            images=takes_images(model),
            context_window=self.vendor.context_window(model),
            unavailable_reason=unavailable,
        )

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        return chat_body(request.model, request, self.vendor.max_tokens_param)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        async with self._wire(await self._keys.current()) as wire:
            async for chunk in wire.stream("chat/completions", self._body(request)):
                yield chunk

    async def complete(self, request: ChatRequest) -> ChatResult:
        async with self._wire(await self._keys.current()) as wire:
            return await wire.complete("chat/completions", self._body(request))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        async with self._wire(await self._keys.current()) as wire:
            return await embed_over(wire, "embeddings", request.model, request)

    async def refresh(self) -> None:
        self._listing.clear()

    async def aclose(self) -> None:
        await self._wires.aclose()


def openai_style(vendor: OpenAIVendor) -> ProviderSpec:
    """The registry row of an OpenAI-style vendor: one `OpenAIProvider` for it, turned on by its key."""
    return ProviderSpec(
        vendor.name,
        (vendor.key_name,),
        lambda ctx: [OpenAIProvider(ctx.keys, ctx.timeout_seconds, vendor)],
        f"{vendor.label}'s API ({vendor.base_url})",
    )


class OpenAICompatibleProvider(Provider):
    """One self-hosted endpoint from `settings.openai_compatible`; its models are `<endpoint name>/<model>`."""

    def __init__(self, endpoint: OpenAICompatibleEndpoint, keys: ProviderKeys, timeout_seconds: float = 60.0) -> None:
        self.name = endpoint.name
        self._endpoint = endpoint
        self._base = endpoint.base_url.rstrip("/")
        self._keys = keys
        self._timeout = timeout_seconds
        self._wires: ClientCache[OpenAIWire] = ClientCache(close_wire, blocking_build=False)
        self._listing = ListingCache()

    async def _key(self) -> tuple[str | None, str | None]:
        """The current key (None for an endpoint that needs none), and why it is missing when it is."""
        key_name = self._endpoint.api_key_name
        key = (await self._keys.current()).get(key_name) if key_name else None
        return key, f"add {key_name} to the keys secret" if key_name and key is None else None

    def _wire(self, key: str | None) -> AbstractAsyncContextManager[OpenAIWire]:
        def build() -> OpenAIWire:
            key_name = self._endpoint.api_key_name
            ctx = ErrorContext(
                f"Endpoint {self.name!r}", self._base, key_name, key, f"is the model served at {self._base}?"
            )
            return OpenAIWire(self._base, {"Authorization": f"Bearer {key}"} if key else {}, ctx, self._timeout)

        return self._wires.lease("endpoint", (key,), build)

    async def list_models(self) -> list[ModelInfo]:
        key, missing = await self._key()
        configured = self._endpoint.models
        if missing is not None:
            return self._infos(configured or [self.name], missing)
        async with self._wire(key) as wire:

            async def fetch() -> tuple[list[ModelInfo], bool]:
                listing = await wire.list_ids(min(self._timeout, _LIST_TIMEOUT_SECONDS))
                if listing.error is None:
                    return self._infos(configured or listing.ids), True
                answered = listing.status is not None and not key_refused(listing.status)
                if answered and configured:
                    return self._infos(configured), True  # it answered; it just lists nothing
                reason = listing.error.message
                if answered:
                    reason += "; list the endpoint's models in its `models` setting"
                return self._infos(configured or [self.name], reason), False

            return await self._listing.get(wire, fetch)

    def _infos(self, models: list[str], unavailable: str | None = None) -> list[ModelInfo]:
        label = self._endpoint.display_name or self.name
        embedding = self._endpoint.embedding_models
        return [
            openai_model_info(
                self.name,
                model,
                f"{model} ({label})",
                embeddings=model in embedding,
                images=model in self._endpoint.image_models,
                context_window=self._endpoint.context_window,
                unavailable_reason=unavailable,
                extra={"base_url": self._base},
                features=OPENAI_PROTOCOL,  # forwarded as they are: the endpoint answers for what it lacks
            )
            for model in dict.fromkeys([*models, *embedding])
        ]

    async def _ready_key(self) -> str | None:
        key, missing = await self._key()
        if missing is not None:
            raise ProviderUnavailableError(f"Endpoint {self.name!r} needs a key: {missing}.")
        return key

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        async with self._wire(await self._ready_key()) as wire:
            async for chunk in wire.stream("chat/completions", chat_body(request.model, request)):
                yield chunk

    async def complete(self, request: ChatRequest) -> ChatResult:
        async with self._wire(await self._ready_key()) as wire:
            return await wire.complete("chat/completions", chat_body(request.model, request))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        async with self._wire(await self._ready_key()) as wire:
            return await embed_over(wire, "embeddings", request.model, request)

    async def refresh(self) -> None:
        self._listing.clear()

    async def aclose(self) -> None:
        await self._wires.aclose()
