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
from genai_chatbot.governance.errors import LimitReachedError, ModelNotAllowedError
from genai_chatbot.governance.store import GovernanceStoreError, UnknownGroupError
from genai_chatbot.models.errors import (
    InvalidRequestError,
    ModelError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
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


# What each model error is over HTTP: its status, and the `type` (also the `code`) of the error body.
# Looked up along the exception's class hierarchy, so a subclass a provider adds answers like its parent.
MODEL_ERROR_HTTP: dict[type[ModelError], tuple[int, str]] = {
    ModelError: (500, "model_error"),
    ModelNotFoundError: (404, "model_not_found"),
    InvalidRequestError: (400, "invalid_request_error"),
    ProviderUnavailableError: (503, "provider_unavailable"),
    RateLimitedError: (429, "rate_limited"),
    ProviderError: (502, "provider_error"),
}


def model_error_http(exc: ModelError) -> tuple[int, str]:
    """The HTTP status and error type of a model error, from `MODEL_ERROR_HTTP`."""
    return next(MODEL_ERROR_HTTP[cls] for cls in type(exc).__mro__ if cls in MODEL_ERROR_HTTP)


def model_error_body(exc: ModelError) -> dict[str, Any]:
    param = (
        exc.param
        if isinstance(exc, InvalidRequestError)
        else ("model" if isinstance(exc, ModelNotFoundError) else None)
    )
    error_type = model_error_http(exc)[1]
    return error_body(exc.message, error_type, param, error_type)


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
    return JSONResponse(model_error_body(exc), status_code=model_error_http(exc)[0], headers=headers)


async def _session_not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SessionNotFoundError)
    message = f"Session {exc.session_id!r} does not exist. List your sessions with GET /api/sessions."
    return JSONResponse(error_body(message, "not_found", "session_id", "session_not_found"), status_code=404)


async def _message_not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MessageNotFoundError)
    message = (
        f"Session {exc.session_id!r} has no answer {exc.message_id!r}. "
        f"GET /api/sessions/{exc.session_id} lists its messages."
    )
    return JSONResponse(error_body(message, "not_found", "message_id", "message_not_found"), status_code=404)


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


def _count_refusal(request: Request, reason: str) -> None:
    """Count a governor's refusal for /metrics, when metrics are on."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.refused(reason)


async def _model_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModelNotAllowedError)
    _count_refusal(request, "model_not_allowed")
    return JSONResponse(error_body(exc.message, "permission_error", "model", "model_not_allowed"), status_code=403)


async def _limit_reached(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LimitReachedError)
    _count_refusal(request, exc.code)
    body = error_body(exc.message, "rate_limit_error", None, exc.code)
    body["error"].update(limit=exc.limit, reset_at=exc.reset_at)
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(exc.retry_after_seconds)})


async def _governance_store_error(_: Request, exc: Exception) -> JSONResponse:
    status, code = (404, "group_not_found") if isinstance(exc, UnknownGroupError) else (422, "invalid_group")
    return JSONResponse(error_body(str(exc), "invalid_request_error", None, code), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GovernanceStoreError, _governance_store_error)
    app.add_exception_handler(ModelNotAllowedError, _model_not_allowed)
    app.add_exception_handler(LimitReachedError, _limit_reached)
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
