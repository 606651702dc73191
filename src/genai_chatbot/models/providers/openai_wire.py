"""The OpenAI wire protocol, shared by `openai.py` (OpenAI, self-hosted servers) and `azure_openai.py`.

`OpenAIWire` is one endpoint+key. The official SDK, on its own httpx client, lists models and produces
whole replies; streams skip the SDK and go over aiohttp (`stream_http.py`), reading the server-sent events
with `json.loads`. Measured on the 2-core development box, the SDK spent ~0.7 ms building each request and
~130 µs per streamed chunk, against ~10 µs a chunk on the direct path; see `stream_http.py` for why that
path is aiohttp rather than httpx. SDK, httpx and aiohttp errors are translated here into `models.errors`.
The SDK, httpx2 (the SDK's HTTP client) and aiohttp are imported only when a wire is built or used.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genai_chatbot.models.errors import (
    InvalidRequestError,
    ModelError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
from genai_chatbot.models.providers.stream_http import StreamingHTTP, parse_stream
from genai_chatbot.models.types import ChatChunk, ChatRequest, ChatResult, FinishReason, ModelInfo, Usage
from genai_chatbot.secrets import mask_url_credentials

if TYPE_CHECKING:
    import aiohttp
    import httpx2

# A failed model listing is retried after this long rather than on every request that resolves a model.
LIST_RETRY_SECONDS = 15.0

_SECRET_LIKE = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")


# Errors --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What an error message needs to name: who answered, which key was used, and the fix for a 404."""

    label: str
    base_url: str
    key_name: str | None = None
    #: The key value itself, only ever used to scrub it out of provider messages.
    secret: str | None = None
    not_found_hint: str = "check the model name"

    def __repr__(self) -> str:
        # The key never shows, nor credentials written into the base URL (which the label may repeat).
        return (
            f"ErrorContext(label={mask_url_credentials(self.label)!r}, "
            f"base_url={mask_url_credentials(self.base_url)!r}, key_name={self.key_name!r}, "
            f"secret={'***' if self.secret else None!r})"
        )

    def scrub(self, text: str) -> str:
        if self.secret:
            text = text.replace(self.secret, "***")
        return _SECRET_LIKE.sub("sk-***", text)

    def unreachable(self, cause: BaseException) -> ProviderUnavailableError:
        detail = str(cause) or type(cause).__name__
        return ProviderUnavailableError(
            f"{self.label}: endpoint {self.base_url} did not answer: {self.scrub(detail)}; is the server running?"
        )

    def timed_out(self) -> ProviderError:
        return ProviderError(
            f"{self.label}: endpoint {self.base_url} did not answer in time; retry, or raise request_timeout_seconds."
        )


def body_message(body: object) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if isinstance(body.get("detail"), str):  # FastAPI-based servers
            return str(body["detail"])
    return body if isinstance(body, str) and body else None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                continue  # an HTTP date; rare enough not to parse
    return None


def status_error(ctx: ErrorContext, status: int, body: object, headers: Mapping[str, str]) -> ModelError:
    """Our error for an HTTP error answer, with the provider's message (never a key) and what to do."""
    detail = ctx.scrub(body_message(body) or f"HTTP {status}")
    if status == 429:
        return RateLimitedError(
            f"{ctx.label} is rate-limiting requests: {detail} Retry later or raise the quota.",
            retry_after=_retry_after(headers),
        )
    if status in (401, 403):
        if ctx.key_name:
            return ProviderUnavailableError(
                f"{ctx.label}: the key {ctx.key_name} was refused (HTTP {status}); update it in the keys secret."
            )
        return ProviderUnavailableError(
            f"{ctx.label} requires a key (HTTP {status}); set api_key_name for it and add that key to the keys secret."
        )
    if status == 404:
        return ProviderUnavailableError(f"{ctx.label}: {detail} ({ctx.not_found_hint}).")
    if status in (400, 413, 422):
        return InvalidRequestError(f"{ctx.label} rejected the request: {detail}")
    return ProviderError(f"{ctx.label} failed (HTTP {status}): {detail}")


def sdk_error(ctx: ErrorContext, exc: Exception) -> ModelError:
    """Translate an exception of the openai SDK (or of httpx under it) into our hierarchy."""
    import httpx2
    import openai

    if isinstance(exc, openai.APIStatusError):
        return status_error(ctx, exc.status_code, exc.body, exc.response.headers)
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ctx.timed_out()
    if isinstance(exc, openai.APIConnectionError):
        return ctx.unreachable(exc.__cause__ or exc)
    if isinstance(exc, httpx2.TransportError):
        return ctx.unreachable(exc)
    return ProviderError(f"{ctx.label} failed: {type(exc).__name__}: {ctx.scrub(str(exc))}")


# The wire ------------------------------------------------------------------------------------------


class OpenAIWire:
    """One endpoint+key: the SDK client (with its httpx pool) and the aiohttp pools that streams use."""

    def __init__(
        self, sdk: Any, http: httpx2.AsyncClient, streaming: StreamingHTTP, auth: dict[str, str], ctx: ErrorContext
    ) -> None:
        self.sdk = sdk
        self.http = http
        self.streaming = streaming
        self.ctx = ctx
        self.base = str(sdk.base_url)
        query = "&".join(f"{k}={v}" for k, v in sdk.default_query.items() if isinstance(v, str))
        self.query = f"?{query}" if query else ""
        self.headers = {k: v for k, v in sdk.default_headers.items() if isinstance(v, str)} | auth
        #: Cleared when the server rejects `stream_options`; then streams carry no usage.
        self.include_usage = True
        self._active = 0
        self._retired = False

    @classmethod
    def build(
        cls, factory: Callable[..., Any], ctx: ErrorContext, timeout: float, auth: dict[str, str], **kwargs: Any
    ) -> OpenAIWire:
        """A wire around `factory(**kwargs)` (`AsyncOpenAI` or `AsyncAzureOpenAI`) with its own pool."""
        import httpx2

        http = httpx2.AsyncClient(timeout=httpx2.Timeout(timeout))
        sdk = factory(http_client=http, max_retries=0, timeout=timeout, **kwargs)
        return cls(sdk, http, StreamingHTTP(timeout), auth, ctx)

    async def retire(self) -> None:
        """Close once no stream uses this wire any more (its key was replaced)."""
        self._retired = True
        if not self._active:
            await self.aclose()

    async def aclose(self) -> None:
        await asyncio.gather(self.http.aclose(), self.streaming.aclose())

    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        """Stream a chat completion posted to `path` (relative to the base URL); see `parse_stream`."""
        self._active += 1
        try:
            response = await self._open(self.base + path + self.query, body)
            try:
                async for chunk in parse_stream(response, self.ctx):
                    yield chunk
            finally:
                # Read to the end, the connection goes back to the pool; closed mid-reply, it is dropped,
                # which is what stops the server generating.
                response.release()
        finally:
            self._active -= 1
            if self._retired and not self._active:
                await self.aclose()

    async def _open(self, url: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
        payload = {**body, "stream": True}
        if self.include_usage:
            payload["stream_options"] = {"include_usage": True}
        while True:
            response = await self.streaming.post(url, payload, self.headers, self.ctx)
            if response.status < 400:
                return response
            try:
                raw = await response.read()
            finally:
                response.release()
            if response.status in (400, 422) and "stream_options" in payload and b"stream_options" in raw:
                self.include_usage = False  # an older server that knows no stream_options: ask without
                del payload["stream_options"]
                continue
            try:
                detail: object = json.loads(raw)
            except ValueError:
                detail = raw.decode("utf-8", "replace")[:500]
            raise status_error(self.ctx, response.status, detail, response.headers)

    async def complete(self, body: dict[str, Any]) -> ChatResult:
        """A whole reply through the SDK's own code path."""
        try:
            reply = await self.sdk.chat.completions.create(**body)
        except Exception as exc:
            raise sdk_error(self.ctx, exc) from None
        if not reply.choices:
            raise ProviderError(f"{self.ctx.label} answered without a reply.")
        choice = reply.choices[0]
        usage = Usage(reply.usage.prompt_tokens, reply.usage.completion_tokens) if reply.usage else None
        return ChatResult(choice.message.content or "", _finish(choice.finish_reason), usage)


def _finish(reason: object) -> FinishReason:
    return "length" if reason == "length" else "stop"


def chat_body(model: str, request: ChatRequest, max_tokens_field: str = "max_tokens") -> dict[str, Any]:
    """The JSON body of a chat completion; `max_tokens_field` differs between OpenAI and older servers."""
    messages: list[dict[str, str]] = [{"role": "system", "content": request.system}] if request.system else []
    messages.extend({"role": m.role, "content": m.content} for m in request.messages)
    body: dict[str, Any] = {"model": model, "messages": messages}
    for name, value in (("temperature", request.temperature), ("top_p", request.top_p), ("seed", request.seed)):
        if value is not None:
            body[name] = value
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    return body


class WireCache:
    """Wires by slot (an endpoint), reused while their settings (the key) stay the same."""

    def __init__(self) -> None:
        self._wires: dict[str, tuple[tuple[str | None, ...], OpenAIWire]] = {}

    async def get(self, slot: str, settings: tuple[str | None, ...], build: Callable[[], OpenAIWire]) -> OpenAIWire:
        current = self._wires.get(slot)
        if current is not None and current[0] == settings:
            return current[1]
        wire = build()
        self._wires[slot] = (settings, wire)
        if current is not None:
            await current[1].retire()
        return wire

    async def aclose(self) -> None:
        wires, self._wires = self._wires, {}
        await asyncio.gather(*(wire.aclose() for _, wire in wires.values()))


class ListingCache:
    """A model list remembered per wire until `clear()`; a failed listing is retried after a while."""

    def __init__(self) -> None:
        self._for: OpenAIWire | None = None
        self._models: list[ModelInfo] = []
        self._expires = 0.0
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def clear(self) -> None:
        self._for = None

    async def get(
        self, wire: OpenAIWire, fetch: Callable[[], Awaitable[tuple[list[ModelInfo], bool]]]
    ) -> list[ModelInfo]:
        if self._for is wire and time.monotonic() < self._expires:
            return self._models
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # a lock belongs to one event loop
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:  # one listing at a time, however many requests wait for it
            if self._for is not wire or time.monotonic() >= self._expires:
                models, ok = await fetch()
                self._for, self._models = wire, models
                self._expires = float("inf") if ok else time.monotonic() + LIST_RETRY_SECONDS
            return self._models
