"""The SQL of turns: an answer stored `streaming` with its question, finalised once, recovered at open.

Each function runs on the store's connection, in its worker thread, under its lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3

from genai_chatbot.chat.records import INTERRUPTED_ERROR, RETRYABLE, Session, StoredMessage
from genai_chatbot.chat.sql_rows import MESSAGE_COLUMNS, message_values
from genai_chatbot.chat.sqlite_tx import transaction
from genai_chatbot.chat.store import TurnStart

logger = logging.getLogger(__name__)


def insert_message(db: sqlite3.Connection, message: StoredMessage, owner: str | None = None) -> None:
    """Insert a message and move its session up the list; two statements, so call it in a transaction.

    `owner` is the id of the store that streams the message (see `sqlite_owners.py`).
    """
    db.execute(
        f"INSERT INTO messages ({MESSAGE_COLUMNS}, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        message_values(message, owner),
    )
    db.execute(
        "UPDATE sessions SET updated_at = max(updated_at, ?) WHERE id = ?",
        (message.created_at, message.session_id),
    )


def begin_turn(
    db: sqlite3.Connection,
    session: Session,
    user_message: StoredMessage | None,
    answer: StoredMessage,
    replaces: str | None,
    owner: str,
) -> TurnStart:
    """The start of a turn, in one transaction (see `HistoryStore.begin_turn`); `owner` streams it."""
    try:
        with transaction(db):
            return _start(db, session, user_message, answer, replaces, owner)
    except _Busy:
        return TurnStart.BUSY


def finish_message(db: sqlite3.Connection, message: StoredMessage) -> bool:
    """The one write of an answer's end; False when its row is gone (its session was deleted)."""
    cursor = db.execute(
        "UPDATE messages SET content = ?, status = ?, model_id = ?, params = ?, error = ?, prompt_tokens = ?, "
        "completion_tokens = ?, latency_ms = ? "
        "WHERE id = ? AND session_id = ? AND status IN ('streaming', 'interrupted')",
        (
            message.content,
            message.status,
            message.model_id,
            json.dumps(message.params),
            message.error,
            message.prompt_tokens,
            message.completion_tokens,
            message.latency_ms,
            message.id,
            message.session_id,
        ),
    )
    return cursor.rowcount > 0


def interrupt_leftover_turns(db: sqlite3.Connection, live_owners: set[str]) -> None:
    """Mark `interrupted` the `streaming` answers of stores that are gone: retryable, no longer busy.

    They hold no text (nothing is written per chunk). Answers streamed by a store in `live_owners` (another
    process on the same file, still running) are left alone.
    """
    cursor = db.execute(
        "UPDATE messages SET status = 'interrupted', content = '', error = ? "
        "WHERE status = 'streaming' AND (owner IS NULL OR owner NOT IN (SELECT value FROM json_each(?)))",
        (INTERRUPTED_ERROR, json.dumps(sorted(live_owners))),
    )
    if cursor.rowcount:
        logger.warning("Marked %d answer(s) left unfinished by a stopped server as interrupted.", cursor.rowcount)


def _start(
    db: sqlite3.Connection,
    session: Session,
    user_message: StoredMessage | None,
    answer: StoredMessage,
    replaces: str | None,
    owner: str,
) -> TurnStart:
    if db.execute("SELECT 1 FROM sessions WHERE id = ?", (session.id,)).fetchone() is None:
        return TurnStart.NO_SESSION
    if db.execute("SELECT 1 FROM messages WHERE session_id = ? AND status = 'streaming'", (session.id,)).fetchone():
        return TurnStart.BUSY
    if replaces is not None:
        retried = db.execute("SELECT 1 FROM messages WHERE id = ? AND session_id = ?", (replaces, session.id))
        if retried.fetchone() is None:
            return TurnStart.NO_MESSAGE
        last = db.execute(
            "SELECT id, status FROM messages WHERE session_id = ? ORDER BY seq DESC LIMIT 1", (session.id,)
        ).fetchone()
        if last["id"] != replaces or last["status"] not in RETRYABLE:
            return TurnStart.NOT_RETRYABLE
        db.execute("DELETE FROM messages WHERE id = ?", (replaces,))
    db.execute(
        "UPDATE sessions SET title = ?, model_id = ?, updated_at = ? WHERE id = ?",
        (session.title, session.model_id, session.updated_at, session.id),
    )
    if user_message is not None:
        insert_message(db, user_message)
    try:
        insert_message(db, answer, owner)
    except sqlite3.IntegrityError as exc:
        if "messages.session_id" not in str(exc):
            raise
        raise _Busy from None  # the partial unique index: another turn of this session is streaming
    return TurnStart.STARTED


class _Busy(Exception):
    """Rolls back a turn's start that the one-streaming-turn index refused."""
