"""The message columns both SQL stores (SQLite, PostgreSQL) read and write, and the mappings both ways.

Opening a long session spends most of its time turning rows into messages (bench/history.py: dict rows and
a `json.loads` of every `"{}"` took a 1,000-turn SQLite session from 12 to 19 ms), so rows are read by
position and the common empty params are not parsed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from genai_chatbot.chat.records import Feedback, Session, StoredMessage

MESSAGE_COLUMNS = (
    "id, session_id, role, content, status, model_id, params, error, prompt_tokens, completion_tokens, "
    "latency_ms, created_at"
)
FEEDBACK_COLUMNS = "feedback_rating, feedback_comment, feedback_at"
SESSION_COLUMNS = "id, user_id, title, model_id, system_prompt, created_at, updated_at"


def message_values(message: StoredMessage, owner: str | None) -> tuple[object, ...]:
    """The values of `message` in `MESSAGE_COLUMNS` order, then `owner` (the store streaming it, if any)."""
    return (
        message.id,
        message.session_id,
        message.role,
        message.content,
        message.status,
        message.model_id,
        json.dumps(message.params),
        message.error,
        message.prompt_tokens,
        message.completion_tokens,
        message.latency_ms,
        message.created_at,
        owner,
    )


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    """The message of a row selected as `MESSAGE_COLUMNS, FEEDBACK_COLUMNS`."""
    (id_, session_id, role, content, status, model_id, params, error, prompt, completion, latency, at) = row[:12]
    rating, comment, feedback_at = row[12:15]
    return StoredMessage(
        id_,
        session_id,
        role,
        content,
        status,
        model_id,
        {} if params == "{}" else json.loads(params),
        error,
        prompt,
        completion,
        latency,
        at,
        Feedback(rating=rating, comment=comment, created_at=feedback_at) if rating else None,
    )


def feedback_values(feedback: Feedback | None) -> tuple[str | None, str | None, float | None]:
    """The values of `feedback` in `FEEDBACK_COLUMNS` order (all None for none)."""
    return (feedback.rating, feedback.comment, feedback.created_at) if feedback else (None, None, None)


def session_values(session: Session) -> tuple[object, ...]:
    """The values of `session` in `SESSION_COLUMNS` order."""
    return (
        session.id,
        session.user_id,
        session.title,
        session.model_id,
        session.system_prompt,
        session.created_at,
        session.updated_at,
    )
