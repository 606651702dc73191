"""Bounds on every input, from the settings `limits.*`, so that no request can exhaust memory or storage.

The request body is bounded by `BodyLimitMiddleware` before any of it is read whole: by its
`Content-Length`, or, for a chunked body, by counting the bytes as they arrive. Everything else is
checked here, in the API layer, by `enforce(limits, body)` in each route, because the bounds are settings
and so cannot be static schema bounds. Each refusal names the limit and the setting that raises it: the
body is a 413, a field a 422. `LimitParam` bounds every `limit` query parameter to 1 to 1000.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genai_chatbot.api.schemas import (
    ChatCompletionRequest,
    MessageCreate,
    SamplingFields,
    SessionCreate,
    SessionUpdate,
)
from genai_chatbot.config import LimitSettings

MAX_LIST_LIMIT = 1000

#: Every `limit` query parameter: how many items to return, 1 to 1000.
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT, description="How many to return, 1 to 1000.")]


class LimitExceededError(HTTPException):
    """A request exceeds one of the `limits.*` settings; the message names the limit and the setting."""

    def __init__(self, message: str, param: str | None, status_code: int = 422, code: str = "limit_exceeded") -> None:
        super().__init__(status_code=status_code, detail=message)
        self.message = message
        self.param = param
        self.code = code


def _setting(name: str) -> str:
    return f"the setting limits.{name} (GENAI_CHATBOT_LIMITS__{name.upper()})"


def body_too_large(limit: int) -> LimitExceededError:
    return LimitExceededError(
        f"The request body is larger than {limit} bytes; send less, or raise {_setting('max_body_bytes')}.",
        None,
        status_code=413,
        code="request_too_large",
    )


def check_text(value: str | None, limit: int, param: str, setting: str) -> None:
    """Refuse `value` when it is longer than `limit` characters (`setting` raises the limit)."""
    if value is not None and len(value) > limit:
        raise LimitExceededError(
            f"{param} is {len(value)} characters long; the limit is {limit}. Shorten it, or raise {_setting(setting)}.",
            param,
        )


def check_max_tokens(value: int | None, limits: LimitSettings, param: str = "max_tokens") -> None:
    if value is not None and value > limits.max_tokens_ceiling:
        raise LimitExceededError(
            f"{param} is {value}; the most a request may ask for is {limits.max_tokens_ceiling}. Ask for fewer, "
            f"or raise {_setting('max_tokens_ceiling')}.",
            param,
        )


def enforce(limits: LimitSettings, body: Any) -> None:
    """Refuse `body` (a request schema of this API) with `LimitExceededError` when it exceeds a limit."""
    if isinstance(body, SessionCreate | SessionUpdate):
        check_text(body.title, limits.max_title_chars, "title", "max_title_chars")
        check_text(body.system_prompt, limits.max_system_prompt_chars, "system_prompt", "max_system_prompt_chars")
    if isinstance(body, MessageCreate):
        check_text(body.content, limits.max_content_chars, "content", "max_content_chars")
    if isinstance(body, SamplingFields):
        check_max_tokens(body.max_tokens, limits)
    if isinstance(body, ChatCompletionRequest):
        _enforce_chat_completion(limits, body)


def _enforce_chat_completion(limits: LimitSettings, body: ChatCompletionRequest) -> None:
    check_max_tokens(body.max_completion_tokens, limits, "max_completion_tokens")
    if len(body.messages) > limits.max_messages:
        raise LimitExceededError(
            f"messages has {len(body.messages)} items; the limit is {limits.max_messages}. Send fewer (older turns "
            f"matter least), or raise {_setting('max_messages')}.",
            "messages",
        )
    images = sum(len(message.images()) for message in body.messages)
    if images > limits.max_images:
        raise LimitExceededError(
            f"The messages hold {images} images; the limit is {limits.max_images}. Send fewer, or raise "
            f"{_setting('max_images')}.",
            "messages",
        )
    system_chars = 0
    for index, message in enumerate(body.messages):
        text = message.text()
        if message.role in ("system", "developer"):
            system_chars += len(text)
        check_text(text, limits.max_content_chars, f"messages[{index}].content", "max_content_chars")
    if system_chars > limits.max_system_prompt_chars:
        raise LimitExceededError(
            f"The system and developer messages are {system_chars} characters long together; the limit is "
            f"{limits.max_system_prompt_chars}. Shorten them, or raise {_setting('max_system_prompt_chars')}.",
            "messages",
        )


async def get_limits(request: Request) -> LimitSettings:
    limits: LimitSettings = request.app.state.settings.limits
    return limits


#: The limits of this server's settings, for routes that call `enforce`.
Limits = Annotated[LimitSettings, Depends(get_limits)]


class BodyLimitMiddleware:
    """Refuses a request body larger than `max_bytes` with a 413, without ever holding more than that.

    A declared `Content-Length` over the limit is refused before the body is read. A body without one
    (chunked) is counted as it arrives, and refused as soon as the count passes the limit: the route reading
    it gets `LimitExceededError`, which becomes the 413. The server discards the rest of the body unread.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                # A length of 19 digits or more is over any limit (and int() may refuse it).
                if value.isdigit() and (len(value) >= 19 or int(value) > self.max_bytes):
                    await _send_error(send, body_too_large(self.max_bytes))
                    return
                break
            if name == b"transfer-encoding":
                chunked = True
                break
        if not chunked:  # no body, or one of a checked Content-Length, which the server never exceeds
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise body_too_large(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except LimitExceededError as exc:  # read outside a route, where no exception handler runs
            if started:
                raise
            await _send_error(send, exc)


async def _send_error(send: Send, exc: LimitExceededError) -> None:
    response = limit_response(exc)
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def limit_response(exc: LimitExceededError) -> JSONResponse:
    error = {"message": exc.message, "type": "invalid_request_error", "param": exc.param, "code": exc.code}
    return JSONResponse({"error": error}, status_code=exc.status_code)


async def _limit_exceeded(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LimitExceededError)
    return limit_response(exc)


def install_limits(app: FastAPI, max_body_bytes: int) -> None:
    """Bound request bodies on `app` and answer every `LimitExceededError` in the API's error shape."""
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_exception_handler(LimitExceededError, _limit_exceeded)
