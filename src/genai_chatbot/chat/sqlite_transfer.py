"""The SQL of moving history on SQLite: every session read page by page, a session imported whole.

`store export` and `store import` use these through `SQLiteHistoryStore.all_sessions` / `import_session`
(see `HistoryStore`); each function runs on the store's connection, in its worker thread, under its lock.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from genai_chatbot.chat.records import Session, StoredMessage
from genai_chatbot.chat.sql_rows import (
    FEEDBACK_COLUMNS,
    MESSAGE_COLUMNS,
    SESSION_COLUMNS,
    feedback_values,
    message_from_row,
    message_values,
    session_values,
)
from genai_chatbot.chat.sqlite_tx import transaction
from genai_chatbot.chat.store import ImportConflictError

_IMPORT_MESSAGE = (
    f"INSERT INTO messages ({MESSAGE_COLUMNS}, owner, {FEEDBACK_COLUMNS}) VALUES ({', '.join(['?'] * 16)})"
)


def sessions_page(db: sqlite3.Connection, after: str, limit: int) -> list[tuple[Session, list[StoredMessage]]]:
    """Up to `limit` sessions with ids after `after`, by id, each with its messages, from one snapshot."""
    db.execute("BEGIN")  # a read transaction: the sessions and their messages come from one snapshot
    try:
        rows = db.execute(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
        sessions = [Session(**dict(row)) for row in rows]
        messages: dict[str, list[StoredMessage]] = {s.id: [] for s in sessions}
        rows = db.execute(
            f"SELECT {MESSAGE_COLUMNS}, {FEEDBACK_COLUMNS} FROM messages "
            "WHERE session_id IN (SELECT value FROM json_each(?)) ORDER BY session_id, seq",
            (json.dumps(list(messages)),),
        )
        for row in rows:
            message = message_from_row(tuple(row))
            messages[message.session_id].append(message)
    finally:
        db.execute("COMMIT")
    return [(s, messages[s.id]) for s in sessions]


def import_session(db: sqlite3.Connection, session: Session, messages: Sequence[StoredMessage]) -> bool:
    """`HistoryStore.import_session` in one transaction."""
    try:
        with transaction(db):
            if db.execute("SELECT 1 FROM sessions WHERE id = ?", (session.id,)).fetchone():
                return False
            db.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", session_values(session)
            )
            db.executemany(
                _IMPORT_MESSAGE, [(*message_values(m, None), *feedback_values(m.feedback)) for m in messages]
            )
    except sqlite3.IntegrityError as exc:
        if "messages.id" not in str(exc):
            raise
        found = db.execute(
            "SELECT id, session_id FROM messages WHERE id IN (SELECT value FROM json_each(?)) LIMIT 1",
            (json.dumps([m.id for m in messages]),),
        ).fetchone()
        raise ImportConflictError(session.id, *((found["id"], found["session_id"]) if found else ("?", "?"))) from None
    return True
