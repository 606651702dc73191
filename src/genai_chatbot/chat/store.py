"""The contract of a history store; SQLite is the default, other back ends implement the same methods."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
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


class ImportConflictError(ValueError):
    """An imported session holds a message id that another stored session has: nothing of it was stored."""

    def __init__(self, session_id: str, message_id: str, other_session: str) -> None:
        super().__init__(
            f"Message {message_id!r} of session {session_id!r} is stored already, in session {other_session!r}; "
            "nothing of that session was imported. Import into a store that does not hold that message, or "
            f"delete session {other_session!r} there first."
        )


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

    def all_sessions(self, page_size: int = 100) -> AsyncIterator[tuple[Session, list[StoredMessage]]]:
        """Every session of every user, each with all its messages in order: what `store export` writes.

        Read `page_size` sessions at a time (with their messages in one read), by id. Each session is read
        whole and consistent; sessions created or deleted while it runs may or may not be included.
        """
        ...

    async def import_session(self, session: Session, messages: Sequence[StoredMessage]) -> bool:
        """Store a session exactly as given (ids, timestamps, every field), with its messages in this order.

        All or nothing, in one transaction. False, storing nothing, when a session with this id exists
        (whatever it holds): importing a file again adds only what is missing. `ImportConflictError` when a
        message id belongs to another session already. `messages` must hold no `streaming` answer.
        """
        ...

    async def close(self) -> None: ...
