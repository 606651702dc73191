"""What can be done to one stored answer: rate it, and generate it again when it did not complete."""

from __future__ import annotations

from fastapi import APIRouter, Response

from genai_chatbot.api.deps import Caller, Service, User
from genai_chatbot.api.limits import Limits, enforce
from genai_chatbot.api.schemas import FeedbackIn, MessageOut, RetryCreate, TurnOut
from genai_chatbot.api.session_routes import TURN_CONFLICT, turn_response

router = APIRouter(prefix="/api/sessions/{session_id}/messages/{message_id}", tags=["Chat"])


@router.put("/feedback", response_model=MessageOut)
async def put_feedback(session_id: str, message_id: str, body: FeedbackIn, service: Service, user: User) -> MessageOut:
    """Rate an answer up or down, with an optional comment; a new rating replaces the previous one."""
    message = await service.set_feedback(user, session_id, message_id, body.rating, body.comment)
    return MessageOut.of(message)


@router.delete("/feedback", response_model=MessageOut)
async def delete_feedback(session_id: str, message_id: str, service: Service, user: User) -> MessageOut:
    """Remove the rating of an answer."""
    message = await service.set_feedback(user, session_id, message_id, None)
    return MessageOut.of(message)


@router.post("/retry", response_model=TurnOut, responses=TURN_CONFLICT)
async def retry_answer(
    session_id: str, message_id: str, body: RetryCreate, service: Service, caller: Caller, limits: Limits
) -> Response | TurnOut:
    """Generate the session's last answer again when it failed, was cancelled or interrupted.

    The events are those of `POST /api/sessions/{id}/messages`; `start` carries the user message already
    stored (it is not stored again). The new answer replaces the retried one as it starts, under a new id.
    409 while a turn of the session runs; 404 once the answer was replaced (by a concurrent retry).
    """
    enforce(limits, body)
    events = await service.retry_turn(caller, session_id, message_id, model_id=body.model, options=body.options())
    return await turn_response(events, body.stream)
