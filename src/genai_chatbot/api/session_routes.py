"""The chat API the web page and scripts use: models, sessions, and turns streamed as server-sent events.

A turn's stream is: `event: start` (the stored user message), `event: delta` per text piece (`{"text": …}`),
then `event: end` with the stored answer, whose `status` is `complete` or `failed` (with `error`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Response

from genai_chatbot.api.deps import Admin, Caller, Service, User
from genai_chatbot.api.schemas import (
    MessageCreate,
    MessageOut,
    ModelOut,
    SessionCreate,
    SessionOut,
    SessionUpdate,
    SessionWithMessages,
    TurnOut,
)
from genai_chatbot.api.sse import TextEventTemplate, event, sse_response
from genai_chatbot.chat.service import TurnEnded, TurnEvent, TurnStarted

router = APIRouter(prefix="/api", tags=["Chat"])


@router.get("/models", response_model=list[ModelOut])
async def list_models(service: Service, caller: Caller) -> list[ModelOut]:
    """Every configured model, unavailable ones included; the reason is shown to admins, "unavailable" to others.

    Reasons name keys and where keys come from, which only admins need to know.
    """
    models = [ModelOut.of(m, service.default_model) for m in await service.list_models()]
    if caller.is_admin:
        return models
    return [m if m.available else m.model_copy(update={"unavailable_reason": "unavailable"}) for m in models]


@router.post("/models/refresh", response_model=list[ModelOut])
async def refresh_models(service: Service, _: Admin) -> list[ModelOut]:
    """Admins: re-read the keys secret and every provider's model list now, instead of waiting for the TTL."""
    await service.registry.refresh()
    return [ModelOut.of(m, service.default_model) for m in await service.list_models()]


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(service: Service, user: User, limit: int = 100) -> list[SessionOut]:
    """The current user's sessions, most recently active first."""
    return [SessionOut.of(s) for s in await service.list_sessions(user, limit)]


@router.post("/sessions", response_model=SessionOut, status_code=201)
async def create_session(body: SessionCreate, service: Service, user: User) -> SessionOut:
    session = await service.create_session(
        user, model_id=body.model, system_prompt=body.system_prompt, title=body.title
    )
    return SessionOut.of(session)


@router.get("/sessions/{session_id}", response_model=SessionWithMessages)
async def get_session(session_id: str, service: Service, user: User) -> SessionWithMessages:
    """A session with its whole history, failed and cancelled answers included."""
    session, messages = await service.session_messages(user, session_id)
    return SessionWithMessages(**SessionOut.of(session).model_dump(), messages=[MessageOut.of(m) for m in messages])


@router.patch("/sessions/{session_id}", response_model=SessionOut)
async def update_session(session_id: str, body: SessionUpdate, service: Service, user: User) -> SessionOut:
    """Rename a session or change its system prompt (an empty string returns to the default)."""
    session = await service.update_session(user, session_id, title=body.title, system_prompt=body.system_prompt)
    return SessionOut.of(session)


@router.delete("/sessions/{session_id}", status_code=204)
async def delete_session(session_id: str, service: Service, user: User) -> Response:
    await service.delete_session(user, session_id)
    return Response(status_code=204)


@router.post("/sessions/{session_id}/messages", response_model=TurnOut)
async def send_message(session_id: str, body: MessageCreate, service: Service, user: User) -> Response | TurnOut:
    """Add a user message and generate the answer: server-sent events, or one JSON body with `stream: false`."""
    events = await service.start_turn(user, session_id, body.content, model_id=body.model, options=body.options())
    return await turn_response(events, body.stream)


async def turn_response(events: AsyncIterator[TurnEvent], stream: bool) -> Response | TurnOut:
    """A turn's events as server-sent events, or gathered into one `TurnOut` body."""
    if stream:
        return sse_response(_stream(events))
    started: TurnStarted | None = None
    ended: TurnEnded | None = None
    async for item in events:
        if isinstance(item, TurnStarted):
            started = item
        elif isinstance(item, TurnEnded):
            ended = item
    assert started is not None and ended is not None
    return TurnOut(user_message=MessageOut.of(started.user_message), message=MessageOut.of(ended.message))


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
