"""The OpenAI-compatible API: `GET /v1/models`, `GET /v1/models/{id}` and `POST /v1/chat/completions`, stateless.

Any OpenAI client (the official SDK, LangChain, curl) works against `http://host:port/v1`.

A response's `model` field is the model the client asked for, as OpenAI clients expect; the
`X-GenAI-Chatbot-Model` header names the model that answered, which differs when a fallback did. A stream of
a model with fallbacks starts (headers included) once a model sent its first token, so the header is right
and an error before that is answered with its HTTP status.
"""

from __future__ import annotations

import functools
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from genai_chatbot.api.deps import Caller, Service
from genai_chatbot.api.errors import error_body, model_error_body
from genai_chatbot.api.images import Images
from genai_chatbot.api.limits import Limits, enforce
from genai_chatbot.api.openai_content import check_image_roles, content_parts
from genai_chatbot.api.openai_tools import tool_call_deltas_json, tool_calls_json, turn_of
from genai_chatbot.api.schemas import ChatCompletionRequest, OpenAIModel, OpenAIModelList
from genai_chatbot.api.sse import DONE, TextEventTemplate, dumps, sse_response
from genai_chatbot.chat.stopping import StoppableStream
from genai_chatbot.chat.usage import count_usage
from genai_chatbot.models.errors import ModelError
from genai_chatbot.models.tool_calls import ToolRequest
from genai_chatbot.models.types import ChatChunk, ChatResult, Usage

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

# Completion ids: unique per process start and cheap (uuid4 per request showed in the profile).
_ID_PREFIX = secrets.token_hex(6)
_id_counter = itertools.count(1)

# OpenAI's own reasons pass through; ours (a stopped consumer, a provider failure) are a plain "stop" to a client.
_FINISH = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "function_call",
    "cancelled": "stop",
    "error": "stop",
}
#: Names the model that answered (a fallback's, when one did); the body's `model` is the one asked for.
MODEL_HEADER = "X-GenAI-Chatbot-Model"


def _usage(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


@router.get("/models", response_model=OpenAIModelList)
async def list_models(service: Service, caller: Caller) -> OpenAIModelList:
    """The models that can answer now, as OpenAI lists them."""
    models = await service.list_models(caller)
    return OpenAIModelList(data=[OpenAIModel(id=m.id, owned_by=m.provider) for m in models if m.available])


@router.get("/models/{model_id:path}", response_model=OpenAIModel, responses={404: {"description": "No such model"}})
async def retrieve_model(model_id: str, service: Service, caller: Caller) -> Response:
    """One model, as OpenAI's `models.retrieve` reads it; 404 for a model the caller may not use either."""
    for model in await service.list_models(caller):
        if model.id == model_id and model.available:
            return JSONResponse(OpenAIModel(id=model.id, owned_by=model.provider).model_dump())
    message = (
        f"Model {model_id!r} does not exist or is not available to you; GET /v1/models lists the models you may use."
    )
    return JSONResponse(error_body(message, "invalid_request_error", "model", "model_not_found"), status_code=404)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, service: Service, caller: Caller, limits: Limits, images: Images
) -> Response:
    """Generate a reply; with `stream: true` as server-sent events ending in `data: [DONE]`."""
    enforce(limits, body)
    check_image_roles(body.messages)
    system_parts = [m.text() for m in body.messages if m.role in ("system", "developer")]
    turns = [
        turn_of(m.role, m.text(), m.tool_calls, m.tool_call_id, await content_parts(m, i, images))
        for i, m in enumerate(body.messages)
        if m.role not in ("system", "developer")
    ]
    prepared = await service.prepare(
        body.model,
        turns,
        system="\n\n".join(system_parts) if system_parts else None,
        options=body.with_fields(body.options(body.max_completion_tokens)),
        caller=caller,
        surface="v1",
        tools=ToolRequest(body.tool_specs(), body.tool_choice_value(), body.parallel_tool_calls),
    )
    completion_id = f"chatcmpl-{_ID_PREFIX}{next(_id_counter):x}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = await service.stream(prepared)
        count = functools.partial(count_usage, prepared) if include_usage else None
        response = sse_response(_stream(chunks, completion_id, created, body.model, count))
        response.headers[MODEL_HEADER] = chunks.model_id
        return response
    result = await service.complete(prepared)
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": _message(result),
                    "finish_reason": _FINISH[result.finish_reason],
                    "logprobs": result.logprobs,
                }
            ],
            "usage": _usage(result.usage),
        },
        headers={MODEL_HEADER: result.model_id or prepared.model.id},
    )


def _message(result: ChatResult) -> dict[str, Any]:
    if not result.tool_calls:
        return {"role": "assistant", "content": result.text}
    # OpenAI's content is null beside tool calls when the model said nothing else.
    return {"role": "assistant", "content": result.text or None, "tool_calls": tool_calls_json(result.tool_calls)}


async def _stream(
    chunks: StoppableStream,
    completion_id: str,
    created: int,
    model: str,
    count: Callable[[str], Awaitable[Usage]] | None,
) -> AsyncIterator[bytes]:
    """The chunks as OpenAI streams them; with `count` (`stream_options.include_usage`) a last chunk with
    the usage, counted when the model reported none.

    The opening chunk and the chunks read ahead (up to the model's first text) go out in one write: on the
    way to the first token each write costs a pass through every middleware.
    """
    events = _Events(completion_id, created, model, keep_text=count is not None)
    opening = [events.chunk({"role": "assistant", "content": ""})]
    opening.extend(events.of(piece) for piece in chunks.read_ahead())
    yield b"".join(opening)
    try:
        async for piece in chunks:  # ends early, as finished, when the server stops (SIGTERM)
            data = events.of(piece)
            if data:
                yield data
    except ModelError as exc:
        # Headers are gone; OpenAI clients raise on an event that carries an "error" object.
        yield b"data: " + dumps(model_error_body(exc)).encode() + b"\n\n"
        yield DONE
        return
    finally:
        await chunks.aclose()
    yield events.chunk({}, events.finish)
    if count is not None and events.text is not None:
        usage = events.usage or await count("".join(events.text))
        yield b"data: " + dumps({**events.base, "choices": [], "usage": _usage(usage)}).encode() + b"\n\n"
    yield DONE


class _Events:
    """The SSE events of one streamed completion, and what its chunks said: finish reason, usage, text."""

    def __init__(self, completion_id: str, created: int, model: str, *, keep_text: bool) -> None:
        self.base: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._text_event = TextEventTemplate(
            {**self.base, "choices": [{"index": 0, "delta": {"content": "\x00TEXT\x00"}, "finish_reason": None}]}
        )
        self.usage: Usage | None = None
        self.finish = "stop"
        #: The text so far, kept only to count usage the model omits.
        self.text: list[str] | None = [] if keep_text else None

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": logprobs}
        return b"data: " + dumps({**self.base, "choices": [choice]}).encode() + b"\n\n"

    def of(self, piece: ChatChunk) -> bytes:
        """The events of one model chunk (none for a chunk of usage or finish reason only)."""
        data = b""
        if piece.logprobs is not None:
            data = self.chunk({"content": piece.text}, None, piece.logprobs)
        elif piece.text:
            data = self._text_event.render(piece.text)
        if piece.tool_calls:
            data += self.chunk({"tool_calls": tool_call_deltas_json(piece.tool_calls)})
        if self.text is not None and piece.text:
            self.text.append(piece.text)
        if piece.finish_reason is not None:
            self.finish = _FINISH[piece.finish_reason]
        if piece.usage is not None:
            self.usage = piece.usage
        return data
