"""What the chat service refuses, in words every surface can show as they are.

The messages name no surface: the API adds its routes (`api/errors.py`), the terminal chat its commands.
"""

from __future__ import annotations


class SessionNotFoundError(LookupError):
    """No session with this id belongs to this user (other users' sessions are reported the same way).

    The message names no surface: each surface says how to list sessions its own way (a route, a command).
    """

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id!r} does not exist; list your sessions to find the one you want.")
        self.message = str(self)
        self.session_id = session_id


class MessageNotFoundError(LookupError):
    """The session has no message with this id (or no answer with it, where an answer is required)."""

    def __init__(self, session_id: str, message_id: str) -> None:
        super().__init__(f"Session {session_id!r} has no answer {message_id!r}; open the session to see its messages.")
        self.message = str(self)
        self.session_id = session_id
        self.message_id = message_id


class TurnInProgressError(RuntimeError):
    """The session is generating an answer already: one turn at a time per session."""

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"Session {session_id!r} is still generating an answer, and a session takes one turn at a time. "
            "Wait for that answer to end (or stop it), then send or retry again."
        )
        self.message = str(self)


SHUTTING_DOWN = "The server is shutting down; send the message again once it is back."
