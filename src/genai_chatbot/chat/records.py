"""What the chat history holds: sessions and their messages, independent of where they are stored."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from genai_chatbot.models.types import Role

# `streaming`: stored when a turn starts, while its answer is generated; exactly one such answer per session.
# `interrupted`: a `streaming` answer found when the store opened: the server stopped before it ended.
MessageStatus = Literal["streaming", "complete", "failed", "cancelled", "interrupted"]
Rating = Literal["up", "down"]

# Answers that may be generated again: they ended without a whole answer.
RETRYABLE: tuple[MessageStatus, ...] = ("failed", "cancelled", "interrupted")
INTERRUPTED_ERROR = "The server stopped before this answer was complete, so it was not kept; Retry generates it again."

TITLE_LENGTH = 60


def new_id() -> str:
    """A random, URL-safe id for sessions and messages."""
    return uuid.uuid4().hex


def title_from(text: str) -> str:
    """A session title from its first message: the first line, shortened to fit a sidebar."""
    first_line = " ".join(text.split())
    return first_line if len(first_line) <= TITLE_LENGTH else first_line[: TITLE_LENGTH - 1].rstrip() + "…"


@dataclass(slots=True)
class Session:
    """One conversation of one user."""

    id: str
    user_id: str
    title: str
    model_id: str
    system_prompt: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class Feedback:
    """A person's verdict on one answer: thumbs up or down, with an optional comment."""

    rating: Rating
    comment: str | None = None
    created_at: float = field(default_factory=time.time)


@dataclass(slots=True)
class StoredMessage:
    """One message of a session, with what produced it when it is a model's answer."""

    id: str
    session_id: str
    role: Role
    content: str
    status: MessageStatus = "complete"
    model_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    created_at: float = field(default_factory=time.time)
    feedback: Feedback | None = None
