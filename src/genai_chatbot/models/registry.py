"""Which models exist now, and which provider serves each id.

The registry is built once from settings and the provider keys, and handed to the chat service. It knows
providers only through the `Provider` contract. Provider modules import their SDKs lazily, so that a
server which never talks to, say, Cohere does not pay for importing its SDK.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from genai_chatbot.config import ConfigError, Settings
from genai_chatbot.models.errors import ModelNotFoundError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.redacting import RedactingProvider
from genai_chatbot.models.types import ModelInfo, split_model_id
from genai_chatbot.secrets import ProviderKeys, build_provider_keys


class ModelRegistry:
    """Resolves `provider/model` ids to a provider and lists every model across providers.

    What it hands out (the providers `resolve` returns, the model list) is wrapped in `RedactingProvider`:
    no error message or unavailable reason above the registry holds a value of the keys secret.
    """

    def __init__(self, providers: Iterable[Provider], keys: ProviderKeys | None = None) -> None:
        self._providers: dict[str, Provider] = {}
        self._redacting: dict[str, RedactingProvider] = {}
        self.keys = keys or ProviderKeys([])
        for provider in providers:
            if provider.name in self._providers:
                raise ConfigError(f"Two providers are named {provider.name!r}; give each endpoint its own name.")
            self._providers[provider.name] = provider
            self._redacting[provider.name] = RedactingProvider(provider, self.keys)

    @property
    def providers(self) -> dict[str, Provider]:
        """The providers themselves, by name, for code that configures or inspects them (not for callers)."""
        return dict(self._providers)

    @property
    def redacting_providers(self) -> dict[str, Provider]:
        """The providers as callers use them: every message they give masked of secrets."""
        return dict(self._redacting)

    async def list_models(self) -> list[ModelInfo]:
        """Every model of every provider, available or not, in provider order."""
        lists = await asyncio.gather(*(p.list_models() for p in self._redacting.values()))
        return [model for models in lists for model in models]

    async def problems(self) -> list[str]:
        """What keeps models from being listed: unreadable or malformed key sources."""
        return [self.keys.redact(error) for error in (await self.keys.current()).errors]

    async def problems_with(self, models: list[ModelInfo], default_model: str) -> list[str]:
        """`problems()`, and a default model missing from `models`: what a model list shows beside the models."""
        problems = list(dict.fromkeys(await self.problems()))
        if not any(m.id == default_model for m in models):
            problems.append(self._missing_default(default_model, keys_broken=bool(problems)))
        return problems

    def _missing_default(self, model_id: str, keys_broken: bool) -> str:
        """Why a chat that names no model will fail: the default model is not among the models, and the likely cause."""
        provider_name = model_id.partition("/")[0]
        provider = self._providers.get(provider_name)
        if provider is None:
            cause = f"no provider named {provider_name!r} is enabled"
        elif keys_broken and provider.enabling_keys:
            cause = f"{provider_name}'s key may be in the keys source above that cannot be read"
        else:
            cause = f"{provider_name} lists no such model"
        return (
            f"The default model {model_id!r} is not among the models ({cause}); a chat that names no model fails "
            "until it is. Set default_model to a listed model, or fix its provider (see genai-chatbot doctor)."
        )

    async def refresh(self) -> None:
        """Re-read the keys now and make every provider list its models afresh."""
        await self.keys.refresh()
        await asyncio.gather(*(p.refresh() for p in self._providers.values()))

    async def resolve(self, model_id: str) -> tuple[Provider, ModelInfo]:
        """The provider and model info for `model_id`; `ModelNotFoundError` lists the known ids."""
        provider_name, name = split_model_id(model_id)
        provider = self._redacting.get(provider_name)
        if provider is not None:
            for info in await provider.list_models():
                if info.name == name:
                    return provider, info
        raise ModelNotFoundError(model_id, [m.id for m in await self.list_models() if m.available])

    async def aclose(self) -> None:
        await asyncio.gather(*(p.aclose() for p in self._providers.values()))


def build_registry(settings: Settings, keys: ProviderKeys | None = None) -> ModelRegistry:
    """The registry for these settings: every provider they enable, reading keys from `keys`."""
    keys = keys or build_provider_keys(settings)
    providers: list[Provider] = []
    if settings.local.enabled:
        from genai_chatbot.models.providers.local import LocalProvider

        providers.append(LocalProvider(settings.local))
    from genai_chatbot.models.providers.ai21 import AI21Provider
    from genai_chatbot.models.providers.cohere import CohereProvider

    providers.append(CohereProvider(keys, timeout_seconds=settings.request_timeout_seconds))
    providers.append(AI21Provider(keys, timeout_seconds=settings.request_timeout_seconds))
    if settings.langchain:
        from genai_chatbot.models.providers.langchain import LangChainProvider

        providers.append(LangChainProvider(settings.langchain, keys, timeout_seconds=settings.request_timeout_seconds))
    from genai_chatbot.models.providers.azure_openai import AzureOpenAIProvider
    from genai_chatbot.models.providers.openai import OpenAICompatibleProvider, OpenAIProvider

    providers.append(OpenAIProvider(keys, timeout_seconds=settings.request_timeout_seconds))
    providers.append(AzureOpenAIProvider(keys, timeout_seconds=settings.request_timeout_seconds))
    providers.extend(
        OpenAICompatibleProvider(endpoint, keys, timeout_seconds=settings.request_timeout_seconds)
        for endpoint in settings.openai_compatible
    )
    if settings.bedrock_region:
        from genai_chatbot.models.providers.bedrock import BedrockProvider

        providers.append(BedrockProvider(settings))
    if settings.sagemaker.endpoints:
        from genai_chatbot.models.providers.sagemaker import SageMakerProvider

        providers.append(SageMakerProvider(settings.sagemaker, timeout_seconds=settings.request_timeout_seconds))
    return ModelRegistry(providers, keys)
