"""Azure OpenAI: several deployments, each described in the keys secret exactly as documented.

    AZURE_OPENAI_MODELS                       "Model1,Model2"  (spaces trimmed, empty items ignored)
    AZURE_OPENAI_API_TYPE__Model1             "azure"
    AZURE_OPENAI_API_VERSION__Model1          "2023-05-15"
    AZURE_OPENAI_API_BASE__Model1             "https://my-resource.openai.azure.com"
    AZURE_OPENAI_API_KEY__Model1              "…"
    AZURE_OPENAI_API_DEPLOYMENT_NAME__Model1  "Model1DeploymentName"

Embedding deployments are listed the same way under `AZURE_OPENAI_EMBEDDING_MODELS` (each with the same
five keys) and served by `POST /v1/embeddings`. A deployment whose model or deployment name is of an
OpenAI vision family (gpt-4o, gpt-4.1, ...) takes images.

Each model is `azure_openai/Model1`. A model whose keys are incomplete is listed as unavailable, naming the
missing keys. Everything is read from the keys at list and stream time, so editing the secret adds, changes
or removes deployments without a restart. Each model keeps one connection pool, rebuilt when its base,
version or key changes; the streaming and the error translation are the shared ones of `openai_wire`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from genai_chatbot.models.errors import ProviderUnavailableError
from genai_chatbot.models.features import OPENAI_PROTOCOL
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.providers._clients import ClientCache
from genai_chatbot.models.providers.openai import context_window
from genai_chatbot.models.providers.openai_capabilities import openai_model_info, takes_images
from genai_chatbot.models.providers.openai_embeddings import embed_over
from genai_chatbot.models.providers.openai_wire import ErrorContext, OpenAIWire, chat_body, close_wire
from genai_chatbot.models.types import ChatChunk, ChatRequest, ChatResult, EmbeddingRequest, EmbeddingResult, ModelInfo
from genai_chatbot.secrets import KeysSnapshot, ProviderKeys, mask_url_credentials

MODELS_KEY = "AZURE_OPENAI_MODELS"
EMBEDDING_MODELS_KEY = "AZURE_OPENAI_EMBEDDING_MODELS"
_FIELDS = ("API_TYPE", "API_VERSION", "API_BASE", "API_KEY", "API_DEPLOYMENT_NAME")
_SUPPORTED_API_TYPES = ("azure",)


def key_name(field: str, model: str) -> str:
    """The name of one of a model's keys, e.g. `AZURE_OPENAI_API_KEY__Model1`."""
    return f"AZURE_OPENAI_{field}__{model}"


def configured_models(snapshot: KeysSnapshot, key: str = MODELS_KEY) -> list[str]:
    """The model ids in `AZURE_OPENAI_MODELS` (or `key`), trimmed, without empty items or repeats."""
    names = (name.strip() for name in (snapshot.get(key) or "").split(","))
    return list(dict.fromkeys(name for name in names if name))


@dataclass(frozen=True, slots=True)
class Deployment:
    """One configured model: where it is deployed and with which key."""

    model: str
    api_version: str
    base: str
    key: str
    deployment: str

    def __repr__(self) -> str:
        # The key never shows, nor credentials written into the base URL.
        return (
            f"Deployment(model={self.model!r}, api_version={self.api_version!r}, "
            f"base={mask_url_credentials(self.base)!r}, key='***', deployment={self.deployment!r})"
        )


def read_deployment(snapshot: KeysSnapshot, model: str) -> Deployment | str:
    """The deployment of `model`, or why it cannot be used (naming keys, never showing values)."""
    values = {field: snapshot.get(key_name(field, model)) for field in _FIELDS}
    missing = [key_name(field, model) for field, value in values.items() if value is None]
    if missing:
        return f"add {', '.join(missing)} to the keys secret"
    api_type = (values["API_TYPE"] or "").strip().lower()
    if api_type not in _SUPPORTED_API_TYPES:
        return f"{key_name('API_TYPE', model)} must be 'azure' (API key authentication)"
    return Deployment(
        model=model,
        api_version=(values["API_VERSION"] or "").strip(),
        base=(values["API_BASE"] or "").strip().rstrip("/"),
        key=values["API_KEY"] or "",
        deployment=(values["API_DEPLOYMENT_NAME"] or "").strip(),
    )


class AzureOpenAIProvider(Provider):
    """The deployments listed in `AZURE_OPENAI_MODELS`; lists nothing while that key is absent."""

    name = "azure_openai"
    enabling_keys = ("AZURE_OPENAI_MODELS",)

    def __init__(self, keys: ProviderKeys, timeout_seconds: float = 60.0) -> None:
        self._keys = keys
        self._timeout = timeout_seconds
        self._wires: ClientCache[OpenAIWire] = ClientCache(close_wire, blocking_build=False)

    async def list_models(self) -> list[ModelInfo]:
        snapshot = await self._keys.current()
        infos = []
        embedding = configured_models(snapshot, EMBEDDING_MODELS_KEY)
        for model in dict.fromkeys([*configured_models(snapshot), *embedding]):
            found = read_deployment(snapshot, model)
            deployment = found.deployment if isinstance(found, Deployment) else model
            infos.append(
                openai_model_info(
                    self.name,
                    model,
                    f"{model} (Azure OpenAI)",
                    embeddings=model in embedding,
                    images=takes_images(model) or takes_images(deployment),
                    context_window=context_window(deployment),
                    unavailable_reason=found if isinstance(found, str) else None,
                    features=OPENAI_PROTOCOL,
                )
            )
        return infos

    @asynccontextmanager
    async def _wire(self, model: str) -> AsyncIterator[tuple[OpenAIWire, Deployment]]:
        """The wire of `model`'s deployment, leased while in use, and the deployment."""
        snapshot = await self._keys.current()
        if model not in configured_models(snapshot) and model not in configured_models(snapshot, EMBEDDING_MODELS_KEY):
            raise ProviderUnavailableError(
                f"Azure OpenAI model {model!r} is not in {MODELS_KEY}; add it there with its five keys."
            )
        found = read_deployment(snapshot, model)
        if isinstance(found, str):
            raise ProviderUnavailableError(f"Azure OpenAI model {model!r} is not fully configured: {found}.")
        deployment = found

        def build() -> OpenAIWire:
            ctx = ErrorContext(
                f"Azure OpenAI ({deployment.base})",
                deployment.base,
                key_name("API_KEY", model),
                deployment.key,
                f"check {key_name('API_DEPLOYMENT_NAME', model)} and {key_name('API_VERSION', model)}",
            )
            query = "?" + urlencode({"api-version": deployment.api_version})
            return OpenAIWire(f"{deployment.base}/openai", {"api-key": deployment.key}, ctx, self._timeout, query)

        settings = (deployment.base, deployment.api_version, deployment.key)
        async with self._wires.lease(model, settings, build) as wire:
            yield wire, deployment

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        async with self._wire(request.model) as (wire, deployment):
            async for chunk in wire.stream(_path(deployment), chat_body(deployment.deployment, request)):
                yield chunk

    async def complete(self, request: ChatRequest) -> ChatResult:
        async with self._wire(request.model) as (wire, deployment):
            return await wire.complete(_path(deployment), chat_body(deployment.deployment, request))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        async with self._wire(request.model) as (wire, deployment):
            path = f"deployments/{quote(deployment.deployment, safe='')}/embeddings"
            return await embed_over(wire, path, deployment.deployment, request)

    async def aclose(self) -> None:
        await self._wires.aclose()


def _path(deployment: Deployment) -> str:
    """Where a deployment's chat completions are, relative to `{base}/openai/`."""
    return f"deployments/{quote(deployment.deployment, safe='')}/chat/completions"
