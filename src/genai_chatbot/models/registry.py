"""Which models exist now, and which provider serves each id.

The registry is built once from settings and handed to the chat service. It knows providers only through
the `Provider` contract; provider modules are imported lazily so that a server which never touches, say,
llama.cpp does not pay for importing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from genai_chatbot.config import Settings
from genai_chatbot.models.errors import ModelNotFoundError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.types import ModelInfo, split_model_id


class ModelRegistry:
    """Resolves `provider/model` ids to a provider and lists every model across providers."""

    def __init__(self, providers: Iterable[Provider]) -> None:
        self._providers: dict[str, Provider] = {}
        for provider in providers:
            if provider.name in self._providers:
                raise ValueError(f"Two providers are named {provider.name!r}.")
            self._providers[provider.name] = provider

    @property
    def providers(self) -> dict[str, Provider]:
        return dict(self._providers)

    async def list_models(self) -> list[ModelInfo]:
        """Every model of every provider, available or not, in provider order."""
        lists = await asyncio.gather(*(p.list_models() for p in self._providers.values()))
        return [model for models in lists for model in models]

    async def resolve(self, model_id: str) -> tuple[Provider, ModelInfo]:
        """The provider and model info for `model_id`; `ModelNotFoundError` lists the known ids."""
        provider_name, name = split_model_id(model_id)
        provider = self._providers.get(provider_name)
        if provider is not None:
            for info in await provider.list_models():
                if info.name == name:
                    return provider, info
        raise ModelNotFoundError(model_id, [m.id for m in await self.list_models() if m.available])

    async def aclose(self) -> None:
        await asyncio.gather(*(p.aclose() for p in self._providers.values()))


def build_registry(settings: Settings) -> ModelRegistry:
    """The registry for these settings: every provider that is enabled there."""
    providers: list[Provider] = []
    if settings.local.enabled:
        from genai_chatbot.models.providers.local import LocalProvider

        providers.append(LocalProvider(settings.local))
    return ModelRegistry(providers)
