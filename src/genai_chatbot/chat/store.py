"""The contract of a history store; SQLite is the default, other back ends implement the same methods."""

from __future__ import annotations

from typing import Protocol

from genai_chatbot.chat.records import Feedback, Session, StoredMessage


class HistoryStore(Protocol):
    """Persistent sessions and messages. Every session query is scoped to one user: isolation lives here."""

    async def create_session(self, session: Session) -> None: ...

    async def get_session(self, user_id: str, session_id: str) -> Session | None: ...

    async def list_sessions(self, user_id: str, limit: int = 100) -> list[Session]: ...

    async def update_session(self, session: Session) -> None: ...

    async def delete_session(self, user_id: str, session_id: str) -> bool: ...

    async def add_message(self, message: StoredMessage) -> None: ...

    async def list_messages(self, session_id: str) -> list[StoredMessage]: ...

    async def replace_message(self, old_id: str, message: StoredMessage) -> None:
        """Store `message` in place of the message `old_id` of the same session, in one transaction."""
        ...

    async def set_feedback(self, session_id: str, message_id: str, feedback: Feedback | None) -> bool:
        """Attach (or with `None` remove) feedback on a message of this session; False if there is none."""
        ...

    async def close(self) -> None: ...
