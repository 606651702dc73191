"""Cohere's chat models through the official `cohere` SDK (v2 chat API): `cohere/<model>`.

The provider is enabled while `COHERE_API_KEY` is in the keys secret; the key is read at list and stream
time, so adding or removing it makes the models appear or disappear without a restart. `COHERE_BASE_URL`
in the secret (or the constructor's `base_url`) points the SDK at another host, e.g. a proxy.

Listing asks the API for the key's chat models, which is also the check that the key works: a key the API
refuses (401/403) lists the models unavailable with what to fix, and an API that cannot be reached lists
them unavailable as unreachable (asked again after half a minute). The curated list is only the names shown
while the API cannot say.

The SDK is imported, and its client built, on a worker thread the first time a key is seen: both take
long enough (module import, TLS context) to stall the event loop. One client is kept per key and base URL.
SDK retries are off: a 429 goes straight back to the caller with its Retry-After, and the request timeout
stays an honest bound instead of being multiplied by hidden retries.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from genai_chatbot.models import features
from genai_chatbot.models.errors import (
    ModelError,
    ProviderError,
    ProviderUnavailableError,
)
from genai_chatbot.models.inputs import EMBEDDINGS
from genai_chatbot.models.providers._catalog import CatalogModel
from genai_chatbot.models.providers._finish import finish_reason
from genai_chatbot.models.providers._http_errors import ErrorContext
from genai_chatbot.models.providers._key_checks import KeyCheck, KeyChecks
from genai_chatbot.models.providers._keyed_sdk import KeyedSDKProvider
from genai_chatbot.models.providers._retry_after import retry_after_from
from genai_chatbot.models.providers.cohere_embeddings import EMBEDDING_MODELS
from genai_chatbot.models.providers.cohere_embeddings import embed as embed_texts
from genai_chatbot.models.providers.cohere_tools import (
    COHERE_TOOL_FEATURES,
    calls_of,
    stream_delta,
    tool_arguments,
    tool_message,
)
from genai_chatbot.models.types import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    ModelInfo,
    Usage,
)
from genai_chatbot.secrets import ProviderKeys

logger = logging.getLogger(__name__)

API_KEY = "COHERE_API_KEY"
BASE_URL_KEY = "COHERE_BASE_URL"
DEFAULT_BASE_URL = "https://api.cohere.com"
INSTALL_HINT = "install the cohere extra: pip install 'genai-chatbot[cohere]'"
# Listing must stay quick even when Cohere is slow; chat calls get the full request timeout.
_DISCOVERY_TIMEOUT_SECONDS = 10.0


#: Current chat models (docs.cohere.com/docs/models); dated names, since aliases move under users' feet.
#: What v2 chat has of OpenAI's fields: `response_format` (a JSON object, optionally by a schema), both
#: penalties and `seed`. Its `logprobs` has no `top_logprobs` and another shape, so it is not offered.
COHERE_FEATURES = frozenset({features.JSON_OBJECT, features.JSON_SCHEMA, features.PENALTIES, features.SEED})
CURATED_MODELS: tuple[CatalogModel, ...] = (
    CatalogModel("command-a-03-2025", "Command A", 256_000),
    CatalogModel("command-a-reasoning-08-2025", "Command A Reasoning", 256_000),
    CatalogModel("command-r-plus-08-2024", "Command R+", 128_000),
    CatalogModel("command-r-08-2024", "Command R", 128_000),
    CatalogModel("command-r7b-12-2024", "Command R7B", 128_000),
)


class CohereProvider(KeyedSDKProvider):
    """Cohere's chat models, available while `COHERE_API_KEY` is in the keys."""

    name = "cohere"
    enabling_keys = (API_KEY,)
    label, api_key_name, base_url_key, default_base_url = "Cohere", API_KEY, BASE_URL_KEY, DEFAULT_BASE_URL
    not_found_hint = "run `genai-chatbot models` for the chat models this key may use"

    def __init__(
        self,
        keys: ProviderKeys,
        timeout_seconds: float = 60.0,
        base_url: str | None = None,
        discover_models: bool = True,
    ) -> None:
        """`base_url` overrides `COHERE_BASE_URL`; `discover_models` asks the API for the key's chat models."""
        super().__init__(keys, timeout_seconds, base_url)
        self._discover = discover_models
        self._discovered: KeyChecks[tuple[CatalogModel, ...]] = KeyChecks()

    def _build_client(self, api_key: str, base_url: str | None) -> Any:
        try:
            import cohere
        except ImportError:
            raise ProviderUnavailableError(f"The cohere SDK is not installed; {INSTALL_HINT}.") from None
        options: dict[str, Any] = {"base_url": base_url} if base_url else {}
        return cohere.AsyncClientV2(
            api_key=api_key,
            timeout=self._timeout,
            max_retries=0,
            client_name="genai-chatbot",
            log_warning_experimental_features=False,
            **options,
        )

    async def list_models(self) -> list[ModelInfo]:
        api_key, base_url = await self._credentials()
        if api_key is None:
            return []  # not configured: the key is what turns Cohere on
        if importlib.util.find_spec("cohere") is None:
            return [
                model.info(self.name, f"the cohere SDK is not installed; {INSTALL_HINT}", COHERE_FEATURES)
                for model in CURATED_MODELS
            ]
        models, reason = await self._models_for(api_key, base_url)
        embedding = [
            dataclasses.replace(model.info(self.name, reason), features=frozenset({EMBEDDINGS}))
            for model in EMBEDDING_MODELS
        ]
        chat = (model.info(self.name, reason, COHERE_FEATURES | COHERE_TOOL_FEATURES) for model in models)
        return [*chat, *embedding]

    async def _models_for(self, api_key: str, base_url: str | None) -> tuple[tuple[CatalogModel, ...], str | None]:
        """The key's chat models and why they are unusable (None: usable), asked once per key until refresh."""
        if not self._discover:
            return CURATED_MODELS, None
        check = await self._discovered.get((api_key, base_url), lambda: self._discover_models(api_key, base_url))
        return check.found, check.problem

    async def _discover_models(self, api_key: str, base_url: str | None) -> KeyCheck[tuple[CatalogModel, ...]]:
        """Ask the API; a refused key or an unreachable API makes the curated names unavailable with the reason.

        Any other failure (an old proxy without `/v1/models`, a 5xx) leaves the curated list usable: the key
        was not refused, and a chat will say what is wrong.
        """
        try:
            async with self._lease(api_key, base_url) as client:
                response = await client.models.list(
                    endpoint="chat", page_size=1000, request_options={"timeout": _DISCOVERY_TIMEOUT_SECONDS}
                )
        except Exception as exc:
            failed = self._check_failure(exc, base_url, _DISCOVERY_TIMEOUT_SECONDS)
            if failed is not None:
                return KeyCheck(CURATED_MODELS, *failed)
            logger.info("Listing Cohere's chat models failed (%s); offering the curated list", _describe(exc))
            return KeyCheck(CURATED_MODELS)
        curated = {model.name: model for model in CURATED_MODELS}
        found = [
            curated.get(item.name) or CatalogModel(item.name, item.name, int(item.context_length or 4096))
            for item in response.models or ()
            if item.name and not item.is_deprecated
        ]
        return KeyCheck(tuple(sorted(found, key=lambda m: m.name)) or CURATED_MODELS)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        finish: FinishReason = "stop"
        usage: Usage | None = None
        async with self._client() as (client, base_url):
            try:
                async with aclosing(client.chat_stream(**_chat_arguments(request))) as events:
                    async for event in events:
                        if event.type == "content-delta":
                            text = _delta_text(event)
                            if text:
                                yield ChatChunk(text=text)
                        elif (call := stream_delta(event)) is not None:
                            yield ChatChunk(tool_calls=(call,))
                        elif event.type == "message-end" and event.delta is not None:
                            if event.delta.error:
                                raise ProviderError(f"Cohere failed while generating: {event.delta.error}")
                            finish = finish_reason(event.delta.finish_reason)
                            usage = _usage(event.delta.usage)
            except Exception as exc:
                raise self._translate(exc, base_url) from exc
        yield ChatChunk(finish_reason=finish, usage=usage)

    async def complete(self, request: ChatRequest) -> ChatResult:
        async with self._client() as (client, base_url):
            try:
                response = await client.chat(**_chat_arguments(request))
            except Exception as exc:
                raise self._translate(exc, base_url) from exc
        text = "".join(getattr(item, "text", "") for item in response.message.content or () if item.type == "text")
        return ChatResult(
            text=text,
            finish_reason=finish_reason(response.finish_reason),
            usage=_usage(response.usage),
            tool_calls=calls_of(response.message),
        )

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        async with self._client() as (client, base_url):
            try:
                return await embed_texts(client, request)
            except Exception as exc:
                raise self._translate(exc, base_url) from exc

    async def refresh(self) -> None:
        self._discovered.clear()

    def _sdk_error(self, exc: Exception, errors: ErrorContext) -> ModelError:
        return _sdk_error(exc, errors)

    async def _close_client(self, client: Any) -> None:
        await client._client_wrapper.httpx_client.httpx_client.aclose()


def _chat_arguments(request: ChatRequest) -> dict[str, Any]:
    """The v2 chat arguments for `request`: the system prompt as the first message, unset parameters left out."""
    import cohere

    messages: list[Any] = [cohere.SystemChatMessageV2(content=request.system)] if request.system else []
    for message in request.messages:
        if message.tool_calls or message.role == "tool":
            messages.append(tool_message(message))
        elif message.role == "system":
            messages.append(cohere.SystemChatMessageV2(content=message.content))
        elif message.role == "user":
            messages.append(cohere.UserChatMessageV2(content=message.content))
        else:
            messages.append(cohere.AssistantChatMessageV2(content=message.content))
    arguments: dict[str, Any] = {"model": request.model, "messages": messages}
    optional = {
        "temperature": request.temperature,
        "p": request.top_p,
        "max_tokens": request.max_tokens,
        "seed": request.seed,
        "stop_sequences": list(request.stop) or None,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
    }
    response_format = request.response_format
    if response_format is not None and response_format.type != "text":
        schema = dict(response_format.schema) if response_format.schema is not None else None
        arguments["response_format"] = cohere.JsonObjectResponseFormatV2(json_schema=schema)
    arguments.update({name: value for name, value in optional.items() if value is not None})
    arguments.update(tool_arguments(request))
    return arguments


def _delta_text(event: Any) -> str:
    message = event.delta.message if event.delta is not None else None
    content = message.content if message is not None else None
    return (content.text or "") if content is not None else ""


def _usage(usage: Any) -> Usage | None:
    """Billed tokens, which is what other providers report as usage; raw token counts when billing is absent."""
    if usage is None:
        return None
    for counts in (usage.billed_units, usage.tokens):
        if counts is not None and (counts.input_tokens is not None or counts.output_tokens is not None):
            return Usage(int(counts.input_tokens or 0), int(counts.output_tokens or 0))
    return None


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    return f"{type(exc).__name__} (HTTP {status})" if status else type(exc).__name__


def _error_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:300]
    return str(body)[:300] if body else ""


def _sdk_error(exc: Exception, errors: ErrorContext) -> ModelError:
    from cohere.core.api_error import ApiError

    if not isinstance(exc, ApiError) or exc.status_code is None:
        logger.exception("Unexpected error from the Cohere SDK")
        return ProviderError(f"Cohere failed: {type(exc).__name__}.")
    return errors.status_error(exc.status_code, _error_detail(exc), retry_after_from(exc.headers))
