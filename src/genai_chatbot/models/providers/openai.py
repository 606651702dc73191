"""OpenAI and OpenAI-style vendors (`openai_vendors.py`: Mistral, Groq, ...), and self-hosted servers that
speak OpenAI's chat API (vLLM, TGI's messages API, llama.cpp server, Ollama).

All talk through `openai_wire.OpenAIWire` (one pooled client per endpoint and key; fast streaming; error
translation). Keys are read from `ProviderKeys` at every list and stream, never captured: a changed key
builds a new client, and the old one closes once its last stream ends. The SDK is imported lazily.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from genai_chatbot.config import OpenAICompatibleEndpoint
from genai_chatbot.models.errors import ProviderUnavailableError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.provider_spec import ProviderSpec
from genai_chatbot.models.providers.openai_vendors import OPENAI, OpenAIVendor
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

# A model listing only checks that the endpoint is there; it should not hang a model list for a minute.
_LIST_TIMEOUT_SECONDS = 10.0
_NO_KEY = "unused"  # the SDK insists on a key; servers started without one ignore it

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
        self._wires = WireCache()
        self._listing = ListingCache()

    async def _wire(self, snapshot: KeysSnapshot) -> OpenAIWire | None:
        vendor = self.vendor
        key = snapshot.get(vendor.key_name)
        if key is None:
            return None
        base = snapshot.get(vendor.base_url_key) or vendor.base_url
        org = snapshot.get(vendor.organization_key) if vendor.organization_key else None

        def build() -> OpenAIWire:
            from openai import AsyncOpenAI

            hint = "this key may have no access to that model"
            ctx = ErrorContext(vendor.label, base, vendor.key_name, key, hint)
            auth = {"Authorization": f"Bearer {key}"}
            return OpenAIWire.build(AsyncOpenAI, ctx, self._timeout, auth, api_key=key, base_url=base, organization=org)

        return await self._wires.get(self.name, (key, base, org), build)

    async def list_models(self) -> list[ModelInfo]:
        wire = await self._wire(await self._keys.current())
        if wire is None:
            return []

        async def fetch() -> tuple[list[ModelInfo], bool]:
            try:
                page = await wire.sdk.with_options(timeout=min(self._timeout, _LIST_TIMEOUT_SECONDS)).models.list()
            except Exception as exc:
                reason = sdk_error(wire.ctx, exc).message
                return [self._info(self.vendor.listing_fallback or self.name, reason)], False
            ids = sorted(m.id for m in page.data)
            return [self._info(model) for model in ids if self.vendor.is_chat_model(model)], True

        return await self._listing.get(wire, fetch)

    def _info(self, model: str, unavailable: str | None = None) -> ModelInfo:
        return ModelInfo(
            id=f"{self.name}/{model}",
            provider=self.name,
            name=model,
            display_name=model,
            context_window=self.vendor.context_window(model),
            available=unavailable is None,
            unavailable_reason=unavailable,
        )

    async def _require(self) -> OpenAIWire:
        wire = await self._wire(await self._keys.current())
        if wire is None:
            vendor = self.vendor
            raise ProviderUnavailableError(f"{vendor.label} needs a key: add {vendor.key_name} to the keys secret.")
        return wire

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        return chat_body(request.model, request, self.vendor.max_tokens_param)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        wire = await self._require()
        async for chunk in wire.stream("chat/completions", self._body(request)):
            yield chunk

    async def complete(self, request: ChatRequest) -> ChatResult:
        wire = await self._require()
        return await wire.complete(self._body(request))

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
