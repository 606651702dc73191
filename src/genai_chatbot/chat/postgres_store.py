"""PostgreSQL history store: the `HistoryStore` contract for several replicas on one database.

Pooled psycopg 3 async connections (`postgres_db.py`); the schema is `postgres_migrations.py`; the SQL of
turns, and how a replica tells its own streaming answers from those of a replica that died, is
`postgres_turns.py`. Each write of several statements is one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from psycopg import AsyncConnection
from psycopg.rows import DictRow, tuple_row

from genai_chatbot.chat.postgres_db import PostgresDatabase
from genai_chatbot.chat.postgres_transfer import import_session, sessions_page
from genai_chatbot.chat.postgres_turns import (
    begin_turn,
    claim_owner,
    finish_message,
    insert_message,
    interrupt_leftover_turns,
)
from genai_chatbot.chat.records import Feedback, Session, StoredMessage
from genai_chatbot.chat.sql_rows import (
    FEEDBACK_COLUMNS,
    MESSAGE_COLUMNS,
    SESSION_COLUMNS,
    message_from_row,
    session_values,
)
from genai_chatbot.chat.store import MessageGoneError, TurnStart


class PostgresHistoryStore:
    """`HistoryStore` on a PostgreSQL database; connects at `open()` or at its first call."""

    def __init__(self, url: str) -> None:
        self._database = PostgresDatabase(url, on_open=self._claim_and_recover)
        self._owner: str | None = None
        self._owner_connection: AsyncConnection[DictRow] | None = None

    def __repr__(self) -> str:
        return "PostgresHistoryStore(<database_url>)"

    async def _claim_and_recover(self, db: AsyncConnection[DictRow]) -> None:
        # Claimed before recovering: a second store opening now sees this one alive.
        self._owner, self._owner_connection = await claim_owner(self._database.url)
        await interrupt_leftover_turns(db)

    async def open(self) -> None:
        """Connect, apply missing migrations and recover the interrupted turns of replicas that are gone."""
        await self._database.open()

    async def create_session(self, session: Session) -> None:
        async with self._database.connection() as db:
            await db.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                session_values(session),
            )

    async def get_session(self, user_id: str, session_id: str) -> Session | None:
        async with self._database.connection() as db:
            cursor = await db.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = %s AND user_id = %s", (session_id, user_id)
            )
            row = await cursor.fetchone()
        return Session(**row) if row else None

    async def list_sessions(self, user_id: str, limit: int = 100) -> list[Session]:
        async with self._database.connection() as db:
            cursor = await db.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = %s ORDER BY updated_at DESC LIMIT %s",
                (user_id, limit),
            )
            rows = await cursor.fetchall()
        return [Session(**row) for row in rows]

    async def update_session(self, session: Session) -> None:
        async with self._database.connection() as db:
            await db.execute(
                "UPDATE sessions SET title = %s, model_id = %s, system_prompt = %s, updated_at = %s "
                "WHERE id = %s AND user_id = %s",
                (
                    session.title,
                    session.model_id,
                    session.system_prompt,
                    session.updated_at,
                    session.id,
                    session.user_id,
                ),
            )

    async def delete_session(self, user_id: str, session_id: str) -> bool:
        async with self._database.connection() as db:
            cursor = await db.execute("DELETE FROM sessions WHERE id = %s AND user_id = %s", (session_id, user_id))
        return cursor.rowcount > 0

    async def add_message(self, message: StoredMessage) -> None:
        async with self._database.connection() as db, db.transaction():
            await insert_message(db, message)

    async def list_messages(self, session_id: str) -> list[StoredMessage]:
        async with self._database.connection() as db:
            cursor = db.cursor(row_factory=tuple_row)
            await cursor.execute(
                f"SELECT {MESSAGE_COLUMNS}, {FEEDBACK_COLUMNS} FROM messages WHERE session_id = %s ORDER BY seq",
                (session_id,),
            )
            rows = await cursor.fetchall()
        return [message_from_row(row) for row in rows]

    async def replace_message(self, old_id: str, message: StoredMessage) -> None:
        async with self._database.connection() as db, db.transaction():
            deleted = await db.execute(
                "DELETE FROM messages WHERE id = %s AND session_id = %s", (old_id, message.session_id)
            )
            if deleted.rowcount == 0:
                raise MessageGoneError(
                    f"Message {old_id!r} of session {message.session_id!r} no longer exists, so nothing "
                    "replaced it; reload the session to see its messages."
                )
            await insert_message(db, message)

    async def begin_turn(
        self, session: Session, user_message: StoredMessage | None, answer: StoredMessage, replaces: str | None
    ) -> TurnStart:
        async with self._database.connection() as db:
            assert self._owner is not None  # claimed when the database opened
            return await begin_turn(db, session, user_message, answer, replaces, self._owner)

    async def finish_message(self, message: StoredMessage) -> bool:
        async with self._database.connection() as db:
            return await finish_message(db, message)

    async def set_feedback(self, session_id: str, message_id: str, feedback: Feedback | None) -> bool:
        values = (feedback.rating, feedback.comment, feedback.created_at) if feedback else (None, None, None)
        async with self._database.connection() as db:
            cursor = await db.execute(
                "UPDATE messages SET feedback_rating = %s, feedback_comment = %s, feedback_at = %s "
                "WHERE id = %s AND session_id = %s",
                (*values, message_id, session_id),
            )
        return cursor.rowcount > 0

    async def all_sessions(self, page_size: int = 100) -> AsyncIterator[tuple[Session, list[StoredMessage]]]:
        after = ""
        while True:
            async with self._database.connection() as db:
                page = await sessions_page(db, after, page_size)
            if not page:
                return
            for entry in page:
                yield entry
            after = page[-1][0].id

    async def import_session(self, session: Session, messages: Sequence[StoredMessage]) -> bool:
        async with self._database.connection() as db:
            return await import_session(db, session, messages)

    async def close(self) -> None:
        """Close the pool, then give up the owner lock: this store's turns have all ended by now."""
        await self._database.close()
        if self._owner_connection is not None:
            await self._owner_connection.close()
            self._owner_connection = None
