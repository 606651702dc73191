"""The built-in providers: the table `build_registry` reads, in the order models are listed.

Each row names a provider, the keys that turn it on, and how it is built (see `provider_spec.py`). A row
imports its module only when it builds, so a server that never talks to, say, Cohere does not import its
code or SDK. Adding a provider is a module under `providers/` and a row here; an OpenAI-style vendor is
an `OpenAIVendor` in `openai_vendors.py` and an `openai_style(...)` row (docs/adding-a-provider.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from genai_chatbot.models.provider import Provider
from genai_chatbot.models.provider_spec import BuildContext, ProviderSpec
from genai_chatbot.models.providers.openai import openai_style
from genai_chatbot.models.providers.openai_vendors import GROQ, MISTRAL, OPENAI


def _local(ctx: BuildContext) -> Sequence[Provider]:
    if not ctx.settings.local.enabled:
        return []
    from genai_chatbot.models.providers.local import LocalProvider

    return [LocalProvider(ctx.settings.local)]


def _cohere(ctx: BuildContext) -> Sequence[Provider]:
    from genai_chatbot.models.providers.cohere import CohereProvider

    return [CohereProvider(ctx.keys, timeout_seconds=ctx.timeout_seconds)]


def _ai21(ctx: BuildContext) -> Sequence[Provider]:
    from genai_chatbot.models.providers.ai21 import AI21Provider

    return [AI21Provider(ctx.keys, timeout_seconds=ctx.timeout_seconds)]


def _langchain(ctx: BuildContext) -> Sequence[Provider]:
    if not ctx.settings.langchain:
        return []
    from genai_chatbot.models.providers.langchain import LangChainProvider

    return [LangChainProvider(ctx.settings.langchain, ctx.keys, timeout_seconds=ctx.timeout_seconds)]


def _azure_openai(ctx: BuildContext) -> Sequence[Provider]:
    from genai_chatbot.models.providers.azure_openai import AzureOpenAIProvider

    return [AzureOpenAIProvider(ctx.keys, timeout_seconds=ctx.timeout_seconds)]


def _openai_compatible(ctx: BuildContext) -> Sequence[Provider]:
    from genai_chatbot.models.providers.openai import OpenAICompatibleProvider

    return [
        OpenAICompatibleProvider(endpoint, ctx.keys, timeout_seconds=ctx.timeout_seconds)
        for endpoint in ctx.settings.openai_compatible
    ]


def _bedrock(ctx: BuildContext) -> Sequence[Provider]:
    if not ctx.settings.bedrock_region:
        return []
    from genai_chatbot.models.providers.bedrock import BedrockProvider

    return [BedrockProvider(ctx.settings)]


def _sagemaker(ctx: BuildContext) -> Sequence[Provider]:
    if not ctx.settings.sagemaker.endpoints:
        return []
    from genai_chatbot.models.providers.sagemaker import SageMakerProvider

    return [SageMakerProvider(ctx.settings.sagemaker, timeout_seconds=ctx.timeout_seconds)]


BUILTIN_PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec("local", (), _local, "the embedded llama.cpp model (local.enabled)"),
    ProviderSpec("cohere", ("COHERE_API_KEY",), _cohere, "Cohere's API"),
    ProviderSpec("ai21", ("AI21_API_KEY",), _ai21, "AI21's API"),
    ProviderSpec("langchain", (), _langchain, "LangChain chat models by import path (langchain)"),
    openai_style(OPENAI),
    ProviderSpec("azure_openai", ("AZURE_OPENAI_MODELS",), _azure_openai, "Azure OpenAI deployments"),
    ProviderSpec("openai_compatible", (), _openai_compatible, "self-hosted OpenAI-style endpoints"),
    openai_style(MISTRAL),
    openai_style(GROQ),
    ProviderSpec("bedrock", (), _bedrock, "Amazon Bedrock (bedrock_region)"),
    ProviderSpec("sagemaker", (), _sagemaker, "SageMaker endpoints (sagemaker.endpoints)"),
)
