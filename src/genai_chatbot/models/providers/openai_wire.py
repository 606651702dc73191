"""The OpenAI wire protocol, shared by `openai.py` (OpenAI, self-hosted servers) and `azure_openai.py`.

`OpenAIWire` is one endpoint+key: it lists models (`GET models`), streams chat completions and fetches
whole ones (`POST chat/completions`), all over the transport of `stream_http.py`. It reads the event stream
with the shared SSE decoder and `json.loads`, and translates error answers with the shared `ErrorContext`.

Why not the official SDK: measured on the 2-core development box, it spent ~0.7 ms building each request
and ~130 µs per streamed chunk, against ~10 µs a chunk on this path; and it brings a second HTTP client
library (httpx2) whose pool was slower than aiohttp's (see `stream_http.py`). The protocol is small: the
request body, the stream's chunk shape, `[DONE]`, and errors as `{"error": {"message"}}`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genai_chatbot.models.errors import ModelError, ProviderError
from genai_chatbot.models.providers._finish import finish_reason
from genai_chatbot.models.providers._http_errors import ErrorContext, body_message
from genai_chatbot.models.providers._retry_after import retry_after_from
from genai_chatbot.models.providers._sse import sse_events
from genai_chatbot.models.providers._tools_openai import add_tool_fields, calls_of, deltas_of, message_json
from genai_chatbot.models.providers.openai_fields import message_content, openai_fields
from genai_chatbot.models.providers.stream_http import HTTPClient, split_credentials
from genai_chatbot.models.types import ChatChunk, ChatRequest, ChatResult, FinishReason, ModelInfo, Usage
from genai_chatbot.per_loop import LoopLock

if TYPE_CHECKING:
    import aiohttp

__all__ = ["ErrorContext", "Listing", "ListingCache", "OpenAIWire", "chat_body"]

# A failed model listing is retried after this long rather than on every request that resolves a model.
LIST_RETRY_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Listing:
    """What `GET models` said: the ids, or the error and the HTTP status (None: no answer at all)."""

    ids: list[str]
    error: ModelError | None = None
    status: int | None = None


class OpenAIWire:
    """One endpoint and key: its base URL, headers (the key among them) and connection pools."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], ctx: ErrorContext, timeout: float, query: str = ""
    ) -> None:
        base, authorization = split_credentials(base_url.rstrip("/") + "/")
        self.base = base
        #: Appended to every path, e.g. Azure's `?api-version=…`.
        self.query = query
        self.headers = {**headers, "content-type": "application/json"}
        if authorization and not any(name.lower() == "authorization" for name in headers):
            self.headers["Authorization"] = authorization  # `https://user:password@gateway/…`: Basic auth
        self.ctx = ctx
        self.http = HTTPClient(self.base, timeout, ctx)
        #: Cleared when the server rejects `stream_options`; then streams carry no usage.
        self.include_usage = True

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _error(self, response: aiohttp.ClientResponse) -> tuple[ModelError, bytes]:
        raw = await self.http.read(response)
        try:
            detail = body_message(json.loads(raw))
        except ValueError:
            detail = raw.decode("utf-8", "replace")[:500]
        return self.ctx.status_error(response.status, detail, retry_after_from(response.headers)), raw

    async def list_ids(self, within_seconds: float) -> Listing:
        """The model ids the endpoint lists, sorted; a failure is returned, not raised (the list shows it)."""
        try:
            response = await self.http.send(
                "GET", self.base + "models" + self.query, self.headers, None, within_seconds
            )
            if response.status >= 400:
                error, _ = await self._error(response)
                return Listing([], error, response.status)
            raw = await self.http.read(response)
        except ModelError as exc:
            return Listing([], exc)
        try:
            return Listing(sorted(str(item["id"]) for item in json.loads(raw).get("data") or ()))
        except (ValueError, KeyError, TypeError, AttributeError):
            return Listing([], ProviderError(f"{self.ctx.label} answered the model list with something unreadable."))

    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        """Stream a chat completion posted to `path` (relative to the base URL); see `read_stream`."""
        response = await self._open(self.base + path + self.query, body)
        try:
            async for chunk in read_stream(self.http.pieces(response), self.ctx):
                yield chunk
        finally:
            # Read to the end, the connection goes back to the pool; closed mid-reply, it is dropped,
            # which is what stops the server generating.
            response.release()

    async def _open(self, url: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
        payload = {**body, "stream": True}
        if self.include_usage:
            payload["stream_options"] = {"include_usage": True}
        while True:
            response = await self.http.send("POST", url, self.headers, json.dumps(payload).encode())
            if response.status < 400:
                return response
            error, raw = await self._error(response)
            if response.status in (400, 422) and "stream_options" in payload and b"stream_options" in raw:
                self.include_usage = False  # an older server that knows no stream_options: ask without
                del payload["stream_options"]
                continue
            raise error

    async def post(self, path: str, body: dict[str, Any]) -> bytes:
        """POST `body` as JSON to `path` (relative to the base URL) and read the whole answer; errors raised."""
        response = await self.http.send("POST", self.base + path + self.query, self.headers, json.dumps(body).encode())
        if response.status >= 400:
            raise (await self._error(response))[0]
        return await self.http.read(response)

    async def complete(self, path: str, body: dict[str, Any]) -> ChatResult:
        """A whole reply."""
        raw = await self.post(path, body)
        try:
            reply = json.loads(raw)
            choice = (reply.get("choices") or [None])[0]
            message = (choice or {}).get("message", {})
            text = message.get("content") or ""
            calls = calls_of(message.get("tool_calls"))
            counts = reply.get("usage")
        except (ValueError, AttributeError):
            raise ProviderError(f"{self.ctx.label} sent a reply that is not a chat completion.") from None
        if choice is None:
            raise ProviderError(f"{self.ctx.label} answered without a reply.")
        usage = Usage(counts.get("prompt_tokens") or 0, counts.get("completion_tokens") or 0) if counts else None
        return ChatResult(
            text, finish_reason(choice.get("finish_reason")), usage, tool_calls=calls, logprobs=choice.get("logprobs")
        )


async def read_stream(pieces: AsyncIterator[bytes], ctx: ErrorContext) -> AsyncIterator[ChatChunk]:
    """Text chunks of a chat-completion event stream, then one chunk with `finish_reason` and usage.

    The per-chunk work is one `json.loads` and a few dict lookups. The body is read to its end, past
    `data: [DONE]`: a response released unread loses its connection, and reconnecting for every stream
    doubles the upstream cost.
    """
    loads = json.loads
    finish: FinishReason | None = None
    usage: Usage | None = None
    done = False
    async for event in sse_events(pieces):
        data = event.data
        if data == "[DONE]":
            done = True
            continue
        try:
            parsed = loads(data)
            choices = parsed.get("choices")
        except (ValueError, AttributeError):
            raise ProviderError(f"{ctx.label} sent a malformed stream event: {ctx.scrub(data[:200])}") from None
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                text = delta.get("content")
                if text:
                    yield ChatChunk(text=text, logprobs=choice.get("logprobs"))
                calls = delta.get("tool_calls")
                if calls:
                    yield ChatChunk(tool_calls=deltas_of(calls))
            reason = choice.get("finish_reason")
            if reason:
                finish = finish_reason(reason)
        counts = parsed.get("usage")
        if counts:
            usage = Usage(counts.get("prompt_tokens") or 0, counts.get("completion_tokens") or 0)
        if parsed.get("error"):
            message = ctx.scrub(body_message(parsed) or "unknown error")
            raise ProviderError(f"{ctx.label} failed in the middle of the reply: {message}")
    if finish is None and not done:
        raise ProviderError(f"{ctx.label} ended the stream before the reply was finished; try again.")
    yield ChatChunk(finish_reason=finish or "stop", usage=usage)


def chat_body(model: str, request: ChatRequest, max_tokens_field: str = "max_tokens") -> dict[str, Any]:
    """The JSON body of a chat completion; `max_tokens_field` differs between OpenAI and older servers."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": request.system}] if request.system else []
    messages.extend(
        message_json(m) if m.tool_calls or m.tool_call_id else {"role": m.role, "content": message_content(m)}
        for m in request.messages
    )
    body: dict[str, Any] = {**openai_fields(request), "model": model, "messages": messages}
    for name, value in (("temperature", request.temperature), ("top_p", request.top_p), ("seed", request.seed)):
        if value is not None:
            body[name] = value
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools or request.tool_choice is not None:
        add_tool_fields(body, request)
    return body


class ListingCache:
    """A model list remembered per wire until `clear()`; a failed listing is retried after a while."""

    def __init__(self) -> None:
        self._for: OpenAIWire | None = None
        self._models: list[ModelInfo] = []
        self._expires = 0.0
        self._lock = LoopLock()  # one listing at a time, however many requests wait for it

    def clear(self) -> None:
        self._for = None

    async def get(
        self, wire: OpenAIWire, fetch: Callable[[], Awaitable[tuple[list[ModelInfo], bool]]]
    ) -> list[ModelInfo]:
        if self._for is wire and time.monotonic() < self._expires:
            return self._models
        async with self._lock:
            if self._for is not wire or time.monotonic() >= self._expires:
                models, ok = await fetch()
                self._for, self._models = wire, models
                self._expires = float("inf") if ok else time.monotonic() + LIST_RETRY_SECONDS
            return self._models


async def close_wire(wire: OpenAIWire) -> None:
    """`ClientCache`'s close for wires."""
    await wire.aclose()
