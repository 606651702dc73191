"""One place where errors become HTTP responses, all in OpenAI's shape: {"error": {message, type, param, code}}.

The openai SDK reads that shape, and people reading a raw response get a sentence that says what to do.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from genai_chatbot.auth.principal import AuthenticationError, AuthenticationUnavailable, PermissionDeniedError
from genai_chatbot.auth.users import DuplicateUserError, UnknownKeyError, UnknownUserError, UserStoreError
from genai_chatbot.chat.service import MessageNotFoundError, SessionNotFoundError, TurnInProgressError
from genai_chatbot.chat.store import ItemTooLargeError
from genai_chatbot.models.errors import InvalidRequestError, ModelError, ModelNotFoundError, RateLimitedError
from genai_chatbot.wording import clause


def error_body(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def internal_error_body(request_id: str) -> dict[str, Any]:
    """The 500 of an unexpected exception: no detail of it, only the id under which the log has it."""
    return error_body(
        f"Internal error (request id {request_id}). The server log has the details under that id; "
        "retry, and if it happens again, report it with the id.",
        "server_error",
        None,
        "internal_error",
    )


def model_error_body(exc: ModelError) -> dict[str, Any]:
    param = (
        exc.param
        if isinstance(exc, InvalidRequestError)
        else ("model" if isinstance(exc, ModelNotFoundError) else None)
    )
    return error_body(exc.message, exc.error_type, param, exc.error_type)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": "invalid"}
    if first["type"] == "json_invalid":
        context = first.get("ctx")
        detail = context.get("error", "") if isinstance(context, dict) else ""
        position = first["loc"][-1] if len(first["loc"]) > 1 else "?"
        message = f"The request body is not valid JSON ({detail} at character {position}); send a JSON object."
        return JSONResponse(error_body(message, "invalid_request_error", None, "invalid_json"), status_code=400)
    problems = "; ".join(f"{_field_name(tuple(e['loc']))}: {clause(e['msg'])}" for e in errors)
    return JSONResponse(
        error_body(f"Invalid request: {problems}.", "invalid_request_error", _field_name(tuple(first["loc"]))),
        status_code=422,
    )


async def _model_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModelError)
    headers = {}
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return JSONResponse(model_error_body(exc), status_code=exc.status_code, headers=headers)


async def _session_not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SessionNotFoundError)
    return JSONResponse(error_body(exc.message, "not_found", "session_id", "session_not_found"), status_code=404)


async def _message_not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MessageNotFoundError)
    return JSONResponse(error_body(exc.message, "not_found", "message_id", "message_not_found"), status_code=404)


async def _turn_in_progress(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TurnInProgressError)
    return JSONResponse(error_body(exc.message, "conflict", "session_id", "turn_in_progress"), status_code=409)


async def _item_too_large(_: Request, exc: Exception) -> JSONResponse:
    # The store's own limit (DynamoDB: 400 KB an item), below the request limits: nothing was stored.
    return JSONResponse(error_body(str(exc), "invalid_request_error", "content", "too_large_to_store"), 413)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(error_body(str(exc.detail), "http_error"), status_code=exc.status_code, headers=exc.headers)


async def _authentication_error(_: Request, exc: Exception) -> JSONResponse:
    # OpenAI answers a bad key with type invalid_request_error and code invalid_api_key; its SDK raises
    # AuthenticationError on the 401 whatever the body says.
    body = error_body(str(exc), "invalid_request_error", None, "invalid_api_key")
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def _authentication_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The identity provider cannot be reached: the token may well be valid, so this is no 401 (which would
    # make the page sign in again, in a loop) but a 503 that names what is down.
    return JSONResponse(error_body(str(exc), "service_unavailable", None, "identity_provider_unavailable"), 503)


async def _permission_denied(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body(str(exc), "permission_error", None, "forbidden"), status_code=403)


async def _user_store_error(_: Request, exc: Exception) -> JSONResponse:
    statuses: dict[type[Exception], tuple[int, str]] = {
        UnknownUserError: (404, "user_not_found"),
        UnknownKeyError: (404, "key_not_found"),
        DuplicateUserError: (409, "user_exists"),
    }
    status, code = statuses.get(type(exc), (422, "invalid_user"))
    return JSONResponse(error_body(str(exc), "invalid_request_error", None, code), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(UserStoreError, _user_store_error)
    app.add_exception_handler(AuthenticationError, _authentication_error)
    app.add_exception_handler(AuthenticationUnavailable, _authentication_unavailable)
    app.add_exception_handler(PermissionDeniedError, _permission_denied)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ModelError, _model_error)
    app.add_exception_handler(SessionNotFoundError, _session_not_found)
    app.add_exception_handler(MessageNotFoundError, _message_not_found)
    app.add_exception_handler(TurnInProgressError, _turn_in_progress)
    app.add_exception_handler(ItemTooLargeError, _item_too_large)
    app.add_exception_handler(StarletteHTTPException, _http_error)
