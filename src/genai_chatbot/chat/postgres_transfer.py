"""The SQL of moving history on PostgreSQL: every session read page by page, a session imported whole.

`store export` and `store import` use these through `PostgresHistoryStore.all_sessions` / `import_session`
(see `HistoryStore`).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, tuple_row

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
from genai_chatbot.chat.store import ImportConflictError

_IMPORT_MESSAGE = (
    f"INSERT INTO messages ({MESSAGE_COLUMNS}, owner, {FEEDBACK_COLUMNS}) VALUES ({', '.join(['%s'] * 16)})"
)


async def sessions_page(
    db: AsyncConnection[DictRow], after: str, limit: int
) -> list[tuple[Session, list[StoredMessage]]]:
    """Up to `limit` sessions with ids after `after`, by id, each with its messages, from one snapshot."""
    async with db.transaction():
        await db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor = await db.execute(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id > %s ORDER BY id LIMIT %s", (after, limit)
        )
        sessions = [Session(**row) for row in await cursor.fetchall()]
        messages: dict[str, list[StoredMessage]] = {s.id: [] for s in sessions}
        rows = db.cursor(row_factory=tuple_row)
        await rows.execute(
            f"SELECT {MESSAGE_COLUMNS}, {FEEDBACK_COLUMNS} FROM messages "
            "WHERE session_id = ANY(%s) ORDER BY session_id, seq",
            (list(messages),),
        )
        for row in await rows.fetchall():
            message = message_from_row(row)
            messages[message.session_id].append(message)
    return [(s, messages[s.id]) for s in sessions]


async def import_session(db: AsyncConnection[DictRow], session: Session, messages: Sequence[StoredMessage]) -> bool:
    """`HistoryStore.import_session` in one transaction."""
    try:
        async with db.transaction():
            inserted = await db.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                session_values(session),
            )
            if inserted.rowcount == 0:
                return False
            async with db.cursor() as cursor:
                await cursor.executemany(
                    _IMPORT_MESSAGE, [(*message_values(m, None), *feedback_values(m.feedback)) for m in messages]
                )
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != "messages_id_key":
            raise
        found = await (
            await db.execute(
                "SELECT id, session_id FROM messages WHERE id = ANY(%s) LIMIT 1", ([m.id for m in messages],)
            )
        ).fetchone()
        raise ImportConflictError(session.id, *((found["id"], found["session_id"]) if found else ("?", "?"))) from None
    return True
