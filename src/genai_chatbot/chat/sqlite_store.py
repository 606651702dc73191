"""SQLite history store: the default, one file under the data directory, WAL so readers never wait.

sqlite3 calls are quick but blocking, so each runs in a worker thread; one connection guarded by a lock
serialises them, which SQLite would do for writers anyway. Schema changes are migrations: named functions
appended to `MIGRATIONS` and recorded in `_migrations`; an applied migration is never edited.

Every write and every migration runs inside `transaction()` (see `sqlite_tx.py`); migrations run their SQL
through `run_script`, never `executescript`, which commits on its own. The SQL of turns (start, finish,
recovery at open) lives in `sqlite_turns.py`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

from genai_chatbot.chat.records import Feedback, Session, StoredMessage
from genai_chatbot.chat.sql_rows import (
    FEEDBACK_COLUMNS,
    MESSAGE_COLUMNS,
    SESSION_COLUMNS,
    message_from_row,
    session_values,
)
from genai_chatbot.chat.sqlite_db import SQLiteDatabase
from genai_chatbot.chat.sqlite_owners import TurnOwner, live_owners
from genai_chatbot.chat.sqlite_transfer import import_session, sessions_page
from genai_chatbot.chat.sqlite_turns import (
    begin_turn,
    finish_message,
    insert_message,
    interrupt_leftover_turns,
)
from genai_chatbot.chat.sqlite_tx import run_script, transaction
from genai_chatbot.chat.store import MessageGoneError, TurnStart

__all__ = ["MIGRATIONS", "SQLiteHistoryStore", "migrate", "run_script", "transaction"]

T = TypeVar("T")


def _m001_sessions_and_messages(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            title TEXT NOT NULL,
            model_id TEXT NOT NULL,
            system_prompt TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX sessions_by_user ON sessions (user_id, updated_at DESC);
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            status TEXT NOT NULL,
            model_id TEXT,
            params TEXT NOT NULL,
            error TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_ms REAL,
            created_at REAL NOT NULL
        );
        CREATE INDEX messages_by_session ON messages (session_id, seq);
        """,
    )


def _m002_message_feedback(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        ALTER TABLE messages ADD COLUMN feedback_rating TEXT;
        ALTER TABLE messages ADD COLUMN feedback_comment TEXT;
        ALTER TABLE messages ADD COLUMN feedback_at REAL;
        """,
    )


def _m003_one_streaming_turn_per_session(db: sqlite3.Connection) -> None:
    # The database, not the process, enforces one turn at a time: it holds across processes and replicas.
    # `owner`: the store streaming the answer, so only a dead store's answers become interrupted.
    run_script(
        db,
        """
        CREATE UNIQUE INDEX one_streaming_turn_per_session ON messages (session_id) WHERE status = 'streaming';
        ALTER TABLE messages ADD COLUMN owner TEXT;
        """,
    )


def _m004_users_and_api_keys(db: sqlite3.Connection) -> None:
    # One statement per execute: executescript() would COMMIT the migration's transaction half-way.
    # Users and keys live here (genai_chatbot.auth.sqlite_users) so that one file holds a deployment's state.
    # `groups_json`: a JSON list of group names (`groups` is an SQL keyword).
    db.execute(
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'user')),
            groups_json TEXT NOT NULL DEFAULT '[]',
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE api_keys (
            prefix TEXT PRIMARY KEY,
            secret_sha256 TEXT NOT NULL,
            user_name TEXT NOT NULL REFERENCES users (name),
            created_at REAL NOT NULL,
            expires_at REAL,
            revoked_at REAL,
            last_used_at REAL
        )
        """
    )
    db.execute("CREATE INDEX api_keys_by_user ON api_keys (user_name, created_at)")


def _m005_group_policies_and_audit_log(db: sqlite3.Connection) -> None:
    # Group policies set at run time (genai_chatbot.governance.sqlite_store): each replaces the settings'
    # [groups.NAME]. The audit log is append-only; `id` gives one order even for entries of the same second.
    db.execute(
        """
        CREATE TABLE group_policies (
            name TEXT PRIMARY KEY,
            policy_json TEXT NOT NULL,
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail_json TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX audit_log_by_time ON audit_log (at)")
    db.execute("CREATE INDEX audit_log_by_actor ON audit_log (actor, at)")


def _m006_usage_and_limits(db: sqlite3.Connection) -> None:
    # The same tables as PostgreSQL's m006_usage_and_limits; the statements on them are governance/usage_sql.py.
    run_script(
        db,
        """
        -- Usage rolled up per UTC day: one row per (day, user, group, model), incremented by each turn.
        -- group_name '' is the user's own row (every turn once), and a turn also counts, whole, in one row per
        -- governed group of its user (governance/usage.py says which), so group rows overlap.
        CREATE TABLE usage_daily (
            day TEXT NOT NULL,
            user_id TEXT NOT NULL,
            group_name TEXT NOT NULL,
            model_id TEXT NOT NULL,
            requests BIGINT NOT NULL DEFAULT 0,
            failed BIGINT NOT NULL DEFAULT 0,
            cancelled BIGINT NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            unpriced BIGINT NOT NULL DEFAULT 0,
            latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            PRIMARY KEY (day, user_id, group_name, model_id)
        );
        CREATE INDEX usage_daily_by_user ON usage_daily (user_id, group_name, day);
        CREATE INDEX usage_daily_by_group ON usage_daily (group_name, day);
        -- Counters budgets and rate limits read before a turn: scope 'user:NAME' or 'group:NAME', period
        -- 'day:YYYY-MM-DD', 'month:YYYY-MM' or 'minute:N' (minutes since the epoch), pruned once expired.
        CREATE TABLE usage_counters (
            scope TEXT NOT NULL,
            period TEXT NOT NULL,
            requests BIGINT NOT NULL DEFAULT 0,
            tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            expires_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (scope, period)
        );
        CREATE INDEX usage_counters_by_expiry ON usage_counters (expires_at);
        -- A user's own budgets and rate limits (governance.settings.Limits as JSON), NULL for none.
        ALTER TABLE users ADD COLUMN limits_json TEXT;
        """,
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m001_sessions_and_messages,
    _m002_message_feedback,
    _m003_one_streaming_turn_per_session,
    _m004_users_and_api_keys,
    _m005_group_policies_and_audit_log,
    _m006_usage_and_limits,
]


def migrate(db: sqlite3.Connection) -> None:
    """Apply, in order, every migration not yet recorded in this database."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for migration in MIGRATIONS:
        # Checked inside the transaction: two processes opening a new database apply each migration once.
        with transaction(db):
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (migration.__name__,)).fetchone():
                continue
            migration(db)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, julianday('now'))", (migration.__name__,))


def _session(row: sqlite3.Row) -> Session:
    return Session(**dict(row))


class SQLiteHistoryStore:
    """`HistoryStore` on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._database = SQLiteDatabase(path)
        self._db = self._database.connection
        migrate(self._db)
        self._owner = TurnOwner(path)
        interrupt_leftover_turns(self._db, live_owners(path))

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._database.run(work)

    async def create_session(self, session: Session) -> None:
        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute(
                    f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", session_values(session)
                )

        await self._run(work)

    async def get_session(self, user_id: str, session_id: str) -> Session | None:
        def work(db: sqlite3.Connection) -> Session | None:
            row = db.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ? AND user_id = ?", (session_id, user_id)
            ).fetchone()
            return _session(row) if row else None

        return await self._run(work)

    async def list_sessions(self, user_id: str, limit: int = 100) -> list[Session]:
        def work(db: sqlite3.Connection) -> list[Session]:
            rows = db.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ? ORDER BY updated_at DESC LIMIT ?",
                (user_id, limit),
            )
            return [_session(row) for row in rows]

        return await self._run(work)

    async def update_session(self, session: Session) -> None:
        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute(
                    "UPDATE sessions SET title = ?, model_id = ?, system_prompt = ?, updated_at = ? "
                    "WHERE id = ? AND user_id = ?",
                    (
                        session.title,
                        session.model_id,
                        session.system_prompt,
                        session.updated_at,
                        session.id,
                        session.user_id,
                    ),
                )

        await self._run(work)

    async def delete_session(self, user_id: str, session_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            with transaction(db):
                cursor = db.execute("DELETE FROM sessions WHERE id = ? AND user_id = ?", (session_id, user_id))
            return cursor.rowcount > 0

        return await self._run(work)

    async def add_message(self, message: StoredMessage) -> None:
        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                insert_message(db, message)

        await self._run(work)

    async def replace_message(self, old_id: str, message: StoredMessage) -> None:
        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                deleted = db.execute(
                    "DELETE FROM messages WHERE id = ? AND session_id = ?", (old_id, message.session_id)
                )
                if deleted.rowcount == 0:
                    raise MessageGoneError(
                        f"Message {old_id!r} of session {message.session_id!r} no longer exists, so nothing "
                        "replaced it; reload the session to see its messages."
                    )
                insert_message(db, message)

        await self._run(work)

    async def begin_turn(
        self, session: Session, user_message: StoredMessage | None, answer: StoredMessage, replaces: str | None
    ) -> TurnStart:
        def work(db: sqlite3.Connection) -> TurnStart:
            return begin_turn(db, session, user_message, answer, replaces, self._owner.id)

        return await self._run(work)

    async def finish_message(self, message: StoredMessage) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            return finish_message(db, message)

        return await self._run(work)

    async def set_feedback(self, session_id: str, message_id: str, feedback: Feedback | None) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            values = (feedback.rating, feedback.comment, feedback.created_at) if feedback else (None, None, None)
            with transaction(db):
                cursor = db.execute(
                    "UPDATE messages SET feedback_rating = ?, feedback_comment = ?, feedback_at = ? "
                    "WHERE id = ? AND session_id = ?",
                    (*values, message_id, session_id),
                )
            return cursor.rowcount > 0

        return await self._run(work)

    async def list_messages(self, session_id: str) -> list[StoredMessage]:
        def work(db: sqlite3.Connection) -> list[StoredMessage]:
            rows = db.execute(
                f"SELECT {MESSAGE_COLUMNS}, {FEEDBACK_COLUMNS} FROM messages WHERE session_id = ? ORDER BY seq",
                (session_id,),
            )
            return [message_from_row(tuple(row)) for row in rows]

        return await self._run(work)

    async def all_sessions(self, page_size: int = 100) -> AsyncIterator[tuple[Session, list[StoredMessage]]]:
        after = ""
        while page := await self._run(partial(sessions_page, after=after, limit=page_size)):
            for entry in page:
                yield entry
            after = page[-1][0].id

    async def import_session(self, session: Session, messages: Sequence[StoredMessage]) -> bool:
        return await self._run(partial(import_session, session=session, messages=messages))

    async def close(self) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.close()
            self._owner.release()

        await self._run(work)
