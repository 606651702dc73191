"""AI21's Jamba models through the official `ai21` SDK (`AsyncAI21Client`): `ai21/<model>`.

The provider is enabled while `AI21_API_KEY` is in the keys secret; the key is read at list and stream
time, so adding or removing it makes the models appear or disappear without a restart. `AI21_BASE_URL`
in the secret (or the constructor's `base_url`) replaces `https://api.ai21.com/studio/v1`.

AI21's API lists no models, so the list is the documented Jamba names. Whether the key works is asked once
per key (until refresh) with the cheapest authenticated read the SDK has, listing one library file: a key
refused with 401/403 lists the models unavailable naming the key, an unreachable API lists them
unavailable as unreachable (asked again after half a minute), and any other answer means the key was
accepted.

Two SDK behaviours are worked around here, both with the SDK's own request path left intact:
- its error types drop the response headers, so a response hook on the httpx client we hand it notes
  Retry-After (and reads error bodies, which its async client tries to read synchronously and cannot);
- its stream decoder calls its own deprecated `from_dict` for every chunk, warning each time, so the
  stream's events are read here with the shared SSE decoder into the SDK's `ChatCompletionChunk` model.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

from genai_chatbot.models.errors import (
    ModelError,
    ProviderError,
    ProviderUnavailableError,
)
from genai_chatbot.models.providers._catalog import CatalogModel
from genai_chatbot.models.providers._finish import finish_reason
from genai_chatbot.models.providers._http_errors import ErrorContext
from genai_chatbot.models.providers._key_checks import KeyCheck, KeyChecks
from genai_chatbot.models.providers._keyed_sdk import KeyedSDKProvider
from genai_chatbot.models.providers._retry_after import retry_after_from
from genai_chatbot.models.providers._sse import sse_events
from genai_chatbot.models.types import ChatChunk, ChatRequest, ChatResult, FinishReason, ModelInfo, Usage
from genai_chatbot.secrets import ProviderKeys

logger = logging.getLogger(__name__)

API_KEY = "AI21_API_KEY"
BASE_URL_KEY = "AI21_BASE_URL"
DEFAULT_BASE_URL = "https://api.ai21.com/studio/v1"
INSTALL_HINT = "install the ai21 extra: pip install 'genai-chatbot[ai21]'"
_CHECK_TIMEOUT_SECONDS = 10.0  # listing must stay quick even when AI21 is slow

# Retry-After of the last error response seen by this task's request; a context variable because the hook
# runs inside the request's own task, and concurrent requests must not see each other's value.
_retry_after: ContextVar[float | None] = ContextVar("ai21_retry_after", default=None)


#: AI21's current chat models (docs.ai21.com, "Jamba models"); the undated names follow the newest release.
MODELS: tuple[CatalogModel, ...] = (
    CatalogModel("jamba-large", "Jamba Large", 256_000),
    CatalogModel("jamba-mini", "Jamba Mini", 256_000),
)


class AI21Provider(KeyedSDKProvider):
    """AI21's Jamba chat models, available while `AI21_API_KEY` is in the keys.

    A `base_url` given to the constructor (up to and including `/studio/v1`) overrides `AI21_BASE_URL`.
    """

    name = "ai21"
    enabling_keys = (API_KEY,)
    label, api_key_name, base_url_key, default_base_url = "AI21", API_KEY, BASE_URL_KEY, DEFAULT_BASE_URL
    not_found_hint = "check the model name (ai21/jamba-large, ai21/jamba-mini)"

    def __init__(self, keys: ProviderKeys, timeout_seconds: float = 60.0, base_url: str | None = None) -> None:
        super().__init__(keys, timeout_seconds, base_url)
        self._checked: KeyChecks[None] = KeyChecks()

    async def list_models(self) -> list[ModelInfo]:
        api_key, base_url = await self._credentials()
        if api_key is None:
            return []  # not configured: the key is what turns AI21 on
        if importlib.util.find_spec("ai21") is None:
            reason: str | None = f"the ai21 SDK is not installed; {INSTALL_HINT}"
        else:
            check = await self._checked.get((api_key, base_url), lambda: self._check_key(api_key, base_url))
            reason = check.problem
        return [model.info(self.name, reason) for model in MODELS]

    async def _check_key(self, api_key: str, base_url: str | None) -> KeyCheck[None]:
        """Why the key cannot be used (refused, or the API unreachable), if it cannot."""
        try:
            async with self._lease(api_key, base_url) as client:
                await asyncio.wait_for(client.library.files.list(limit=1), _CHECK_TIMEOUT_SECONDS)
        except Exception as exc:
            failed = self._check_failure(exc, base_url, _CHECK_TIMEOUT_SECONDS)
            if failed is not None:
                return KeyCheck(None, *failed)
            logger.debug("AI21 key check answered %s; the key was not refused", type(exc).__name__)
        return KeyCheck(None)

    def _build_client(self, api_key: str, base_url: str | None) -> Any:
        try:
            import httpx
            from ai21 import AsyncAI21Client
        except ImportError:
            raise ProviderUnavailableError(f"The ai21 SDK is not installed; {INSTALL_HINT}.") from None
        http = httpx.AsyncClient(event_hooks={"response": [_note_error_response]})
        return AsyncAI21Client(
            api_key=api_key, api_host=base_url, timeout_sec=self._timeout, http_client=http, via="genai-chatbot"
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        finish: FinishReason = "stop"
        usage: Usage | None = None
        _retry_after.set(None)
        async with self._client() as (client, base_url):  # imports the SDK (on a worker thread) first
            from ai21.models.chat import ChatCompletionChunk

            try:
                stream = await client.chat.completions.create(**_chat_arguments(request), stream=True)
                async with stream:
                    async for data in _sse_data(stream.response):
                        chunk = ChatCompletionChunk.model_validate(data)
                        for choice in chunk.choices:
                            if choice.delta.content:
                                yield ChatChunk(text=choice.delta.content)
                            if choice.finish_reason:
                                finish = finish_reason(choice.finish_reason)
                        if chunk.usage is not None:
                            usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            except Exception as exc:
                raise self._translate(exc, base_url) from exc
        yield ChatChunk(finish_reason=finish, usage=usage)

    async def complete(self, request: ChatRequest) -> ChatResult:
        _retry_after.set(None)
        async with self._client() as (client, base_url):
            try:
                response = await client.chat.completions.create(**_chat_arguments(request))
            except Exception as exc:
                raise self._translate(exc, base_url) from exc
        choice = response.choices[0]
        return ChatResult(
            text=choice.message.content or "",
            finish_reason=finish_reason(choice.finish_reason),
            usage=Usage(response.usage.prompt_tokens, response.usage.completion_tokens),
        )

    async def refresh(self) -> None:
        self._checked.clear()

    def _sdk_error(self, exc: Exception, errors: ErrorContext) -> ModelError:
        return _sdk_error(exc, errors)

    async def _close_client(self, client: Any) -> None:
        await client._client.aclose()


async def _note_error_response(response: Any) -> None:
    """httpx response hook: read error bodies asynchronously and remember Retry-After for `_translate`."""
    if response.status_code >= 400:
        await response.aread()
        _retry_after.set(retry_after_from(response.headers))


async def _sse_data(response: Any) -> AsyncIterator[dict[str, Any]]:
    """The JSON payloads of an OpenAI-style event stream, ending at `data: [DONE]`."""
    async for event in sse_events(response.aiter_bytes()):
        if event.data == "[DONE]":
            return
        try:
            yield json.loads(event.data)
        except json.JSONDecodeError:
            raise ProviderError(f"AI21 sent a stream chunk that is not JSON: {event.data[:200]!r}") from None


def _chat_arguments(request: ChatRequest) -> dict[str, Any]:
    """`chat.completions.create` arguments: the system prompt as the first message, unset parameters left out.

    `seed` is not sent: AI21's chat API has no such parameter and refuses unknown ones.
    """
    from ai21.models.chat import AssistantMessage, SystemMessage, UserMessage

    classes = {"system": SystemMessage, "user": UserMessage, "assistant": AssistantMessage}
    messages: list[Any] = [SystemMessage(content=request.system)] if request.system else []
    messages.extend(classes[m.role](content=m.content) for m in request.messages)
    arguments: dict[str, Any] = {"model": request.model, "messages": messages}
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop) or None,
    }
    arguments.update({name: value for name, value in optional.items() if value is not None})
    return arguments


def _detail(details: str | None) -> str:
    if not details:
        return ""
    try:
        body = json.loads(details)
    except ValueError:
        return details[:300]
    if isinstance(body, dict):
        message = body.get("detail") or body.get("message") or body.get("error") or body
        return str(message)[:300]
    return details[:300]


def _sdk_error(exc: Exception, errors: ErrorContext) -> ModelError:
    from ai21.errors import AI21APIError, AI21Error

    if isinstance(exc, AI21Error):
        return ProviderError(f"AI21 failed: {exc.message[:300]}")
    if not isinstance(exc, AI21APIError):
        logger.exception("Unexpected error from the AI21 SDK")
        return ProviderError(f"AI21 failed: {type(exc).__name__}.")
    return errors.status_error(exc.status_code, _detail(exc.details), _retry_after.get())
