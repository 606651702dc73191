"""The chat API the web page and scripts use: models, sessions, and turns streamed as server-sent events.

A turn's stream is: `event: start` (the stored user message), `event: delta` per text piece (`{"text": …}`),
then `event: end` with the stored answer, whose `status` is `complete`, `failed` (with `error`), or
`cancelled` when the server is shutting down. A session takes one turn at a time: 409 while one runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Response
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from genai_chatbot.api.deps import Admin, Caller, Service, User
from genai_chatbot.api.limits import LimitParam, Limits, enforce
from genai_chatbot.api.schemas import (
    MessageCreate,
    MessageOut,
    ModelList,
    ModelOut,
    SessionCreate,
    SessionOut,
    SessionUpdate,
    SessionWithMessages,
    TurnOut,
)
from genai_chatbot.api.sse import SSE_HEADERS, TextEventTemplate, event
from genai_chatbot.auth.principal import Principal
from genai_chatbot.chat.service import ChatService, Turn, TurnEnded, TurnEvent, TurnStarted
from genai_chatbot.models.inputs import chat_models

router = APIRouter(prefix="/api", tags=["Chat"])


#: What a non-admin sees of a broken keys source: that models may be missing, and who can fix it.
HIDDEN_KEYS_PROBLEM = (
    "A keys source cannot be read, so some models may be missing; an admin can see why with 'genai-chatbot doctor'."
)


@router.get("/models", response_model=ModelList)
async def list_models(service: Service, caller: Caller) -> ModelList:
    """Every configured model, unavailable ones included, and the problems that hide others.

    A problem is an unreadable or malformed keys source (its providers' models are then missing), or a
    default model that is not listed. Reasons and problems name keys and where keys come from, which only
    admins need to know: others see "unavailable", and that a keys source is broken without which or why.
    """
    listing = await _model_list(service, caller)
    if caller.is_admin:
        return listing
    listing.models = [
        m if m.available else m.model_copy(update={"unavailable_reason": "unavailable"}) for m in listing.models
    ]
    return listing


@router.post("/models/refresh", response_model=ModelList)
async def refresh_models(service: Service, admin: Admin) -> ModelList:
    """Admins: re-read the keys secret and every provider's model list now, instead of waiting for the TTL."""
    await service.refresh_models()
    return await _model_list(service, admin)


async def _model_list(service: ChatService, caller: Principal) -> ModelList:
    """The models and the problems; a non-admin learns that a keys source is broken, not which or why.

    Embedding models are left out: this is the list chats pick from (they are on GET /v1/models).
    """
    infos = chat_models(await service.list_models(caller))
    models = [ModelOut.of(m, service.default_model) for m in infos]
    if caller.is_admin:
        return ModelList(models=models, problems=await service.problems(infos))
    problems = [HIDDEN_KEYS_PROBLEM] if await service.problems() else []
    if not any(m.id == service.default_model for m in models) and not await _hidden_by_access(service):
        problems.append(
            f"The default model {service.default_model!r} is not available; pick another model, "
            "or ask an admin to fix it."
        )
    return ModelList(models=models, problems=problems)


async def _hidden_by_access(service: ChatService) -> bool:
    """Whether the default model exists but the caller's groups do not allow it (the page picks another)."""
    return any(m.id == service.default_model for m in await service.list_models())


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(service: Service, user: User, limit: LimitParam = 100) -> list[SessionOut]:
    """The current user's sessions, most recently active first."""
    return [SessionOut.of(s) for s in await service.list_sessions(user, limit)]


@router.post("/sessions", response_model=SessionOut, status_code=201)
async def create_session(body: SessionCreate, service: Service, caller: Caller, limits: Limits) -> SessionOut:
    """A new session; 403 `model_not_allowed` when the caller's groups do not allow its model."""
    enforce(limits, body)
    session = await service.create_session(
        caller, model_id=body.model, system_prompt=body.system_prompt, title=body.title
    )
    return SessionOut.of(session)


@router.get("/sessions/{session_id}", response_model=SessionWithMessages)
async def get_session(session_id: str, service: Service, user: User) -> SessionWithMessages:
    """A session with its whole history, failed and cancelled answers included."""
    session, messages = await service.session_messages(user, session_id)
    return SessionWithMessages(**SessionOut.of(session).model_dump(), messages=[MessageOut.of(m) for m in messages])


@router.patch("/sessions/{session_id}", response_model=SessionOut)
async def update_session(
    session_id: str, body: SessionUpdate, service: Service, user: User, limits: Limits
) -> SessionOut:
    """Rename a session or change its system prompt (an empty string returns to the default)."""
    enforce(limits, body)
    session = await service.update_session(user, session_id, title=body.title, system_prompt=body.system_prompt)
    return SessionOut.of(session)


@router.delete("/sessions/{session_id}", status_code=204)
async def delete_session(session_id: str, service: Service, user: User) -> Response:
    await service.delete_session(user, session_id)
    return Response(status_code=204)


# For the API docs: a turn is refused while another one of the session runs.
TURN_CONFLICT: dict[int | str, dict[str, object]] = {
    409: {"description": "Another turn of this session is generating (code `turn_in_progress`); nothing stored."}
}


@router.post("/sessions/{session_id}/messages", response_model=TurnOut, responses=TURN_CONFLICT)
async def send_message(
    session_id: str, body: MessageCreate, service: Service, caller: Caller, limits: Limits
) -> Response | TurnOut:
    """Add a user message and generate the answer: server-sent events, or one JSON body with `stream: false`.

    409 (`turn_in_progress`) while another turn of the session is generating; nothing is stored then.
    """
    enforce(limits, body)
    events = await service.start_turn(caller, session_id, body.content, model_id=body.model, options=body.options())
    return await turn_response(events, body.stream)


async def turn_response(turn: Turn, stream: bool) -> Response | TurnOut:
    """A turn's events as server-sent events, or gathered into one `TurnOut` body.

    The turn is closed whatever happens to the response (client gone, response never started), so its
    answer never stays `streaming`.
    """
    if stream:
        return _TurnStream(turn)
    started: TurnStarted | None = None
    ended: TurnEnded | None = None
    try:
        async for item in turn:
            if isinstance(item, TurnStarted):
                started = item
            elif isinstance(item, TurnEnded):
                ended = item
    finally:
        await turn.aclose()
    assert started is not None and ended is not None
    return TurnOut(user_message=MessageOut.of(started.user_message), message=MessageOut.of(ended.message))


class _TurnStream(StreamingResponse):
    """The SSE response of a turn, which closes the turn when the response ends, however it ends."""

    def __init__(self, turn: Turn) -> None:
        super().__init__(_stream(turn), media_type="text/event-stream", headers=SSE_HEADERS)
        self._turn = turn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._turn.aclose()


async def _stream(events: AsyncIterator[TurnEvent]) -> AsyncIterator[bytes]:
    delta = TextEventTemplate({"text": "\x00TEXT\x00"}, name="delta")
    async for item in events:
        if isinstance(item, TurnStarted):
            yield event(
                {
                    "user_message": MessageOut.of(item.user_message).model_dump(),
                    "assistant_message_id": item.assistant_message_id,
                },
                "start",
            )
        elif isinstance(item, TurnEnded):
            yield event({"message": MessageOut.of(item.message).model_dump()}, "end")
        elif item.text:
            yield delta.render(item.text)
