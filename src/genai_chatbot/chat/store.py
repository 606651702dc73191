"""The contract of a history store; SQLite is the default, other back ends implement the same methods."""

from __future__ import annotations

import enum
from typing import Protocol

from genai_chatbot.chat.records import Feedback, Session, StoredMessage


class TurnStart(enum.Enum):
    """How an attempt to store the start of a turn ended; only `STARTED` stored anything."""

    STARTED = "started"
    BUSY = "busy"  # another turn of the session is streaming
    NO_SESSION = "no_session"  # the session is gone
    NO_MESSAGE = "no_message"  # the answer to replace is gone
    NOT_RETRYABLE = "not_retryable"  # the answer to replace is no longer the last one, or did not fail


class MessageGoneError(LookupError):
    """The message to replace no longer exists (its session was deleted, or it was replaced already)."""


class ItemTooLargeError(ValueError):
    """A store cannot keep this message or session in one piece (DynamoDB: 400 KB per item).

    Nothing was stored and nothing was truncated; the message names the limit and what to do.
    """


class HistoryStore(Protocol):
    """Persistent sessions and messages. Every session query is scoped to one user: isolation lives here.

    A turn is stored in two writes: `begin_turn` (the user's message and the answer, status `streaming`, in
    one transaction) and `finish_message` (the answer's final text and status). At most one answer per
    session is `streaming`; a store finds the ones left by a stopped server when it opens and marks them
    `interrupted`.
    """

    async def create_session(self, session: Session) -> None: ...

    async def get_session(self, user_id: str, session_id: str) -> Session | None: ...

    async def list_sessions(self, user_id: str, limit: int = 100) -> list[Session]: ...

    async def update_session(self, session: Session) -> None: ...

    async def delete_session(self, user_id: str, session_id: str) -> bool: ...

    async def add_message(self, message: StoredMessage) -> None: ...

    async def list_messages(self, session_id: str) -> list[StoredMessage]: ...

    async def replace_message(self, old_id: str, message: StoredMessage) -> None:
        """Store `message` in place of the message `old_id` of the same session, in one transaction.

        Raises `MessageGoneError` (and stores nothing) when `old_id` no longer exists.
        """
        ...

    async def begin_turn(
        self, session: Session, user_message: StoredMessage | None, answer: StoredMessage, replaces: str | None
    ) -> TurnStart:
        """In one transaction: save `session`'s title, model and time, and store the `streaming` answer.

        A new turn stores `user_message` first; a retry (`replaces` set, `user_message` None) instead removes
        the answer `replaces`, which must still be the session's last message and retryable. Nothing is
        stored unless the result is `TurnStart.STARTED`.
        """
        ...

    async def finish_message(self, message: StoredMessage) -> bool:
        """Write the final text, status and figures of a `streaming` (or `interrupted`) answer; False if gone."""
        ...

    async def set_feedback(self, session_id: str, message_id: str, feedback: Feedback | None) -> bool:
        """Attach (or with `None` remove) feedback on a message of this session; False if there is none."""
        ...

    async def close(self) -> None: ...
