"""The SQL of turns on PostgreSQL: an answer stored `streaming` with its question, finalised once, recovered.

Which answers are orphaned: each history store (each replica, each CLI command) holds a session-level
advisory lock named after its owner id on a connection of its own, for as long as it is open. PostgreSQL
releases that lock when the connection ends, even when the process is killed. A store that opens marks
`interrupted` only the `streaming` answers whose owner's lock it can take: those of stores that are gone,
never those of a replica still streaming them.

A turn's start locks its session row (`SELECT ... FOR UPDATE`), so two replicas starting a turn on one
session take turns; the partial unique index `one_streaming_turn_per_session` is the backstop.
"""

from __future__ import annotations

import json
import logging

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from genai_chatbot.chat.records import INTERRUPTED_ERROR, RETRYABLE, Session, StoredMessage, new_id
from genai_chatbot.chat.sql_rows import MESSAGE_COLUMNS, message_values
from genai_chatbot.chat.store import TurnStart

logger = logging.getLogger(__name__)

_OWNER_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS locked"


async def insert_message(db: AsyncConnection[DictRow], message: StoredMessage) -> None:
    """Insert a message and move its session up the list; two statements, so call it in a transaction."""
    await db.execute(
        f"INSERT INTO messages ({MESSAGE_COLUMNS}, owner) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        message_values(message, None),
    )
    await db.execute(
        "UPDATE sessions SET updated_at = GREATEST(updated_at, %s) WHERE id = %s",
        (message.created_at, message.session_id),
    )


async def begin_turn(
    db: AsyncConnection[DictRow],
    session: Session,
    user_message: StoredMessage | None,
    answer: StoredMessage,
    replaces: str | None,
    owner: str,
) -> TurnStart:
    """The start of a turn, in one transaction (see `HistoryStore.begin_turn`); `owner` streams it."""
    try:
        async with db.transaction():
            outcome = await _start(db, session, user_message, answer, replaces, owner)
            if outcome is not TurnStart.STARTED:
                raise _Refused(outcome)
            return outcome
    except _Refused as refused:
        return refused.outcome
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != "one_streaming_turn_per_session":
            raise
        return TurnStart.BUSY


async def finish_message(db: AsyncConnection[DictRow], message: StoredMessage) -> bool:
    """The one write of an answer's end; False when its row is gone (its session was deleted)."""
    cursor = await db.execute(
        "UPDATE messages SET content = %s, status = %s, model_id = %s, params = %s, error = %s, "
        "prompt_tokens = %s, completion_tokens = %s, latency_ms = %s "
        "WHERE id = %s AND session_id = %s AND status IN ('streaming', 'interrupted')",
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


async def claim_owner(url: str) -> tuple[str, AsyncConnection[DictRow]]:
    """A new owner id and the connection holding its lock: close the connection to give the claim up."""
    from genai_chatbot.chat.postgres_db import connect

    owner = new_id()
    db = await connect(url)
    row = await (await db.execute(_OWNER_LOCK, (owner,))).fetchone()
    if not row or not row["locked"]:  # a fresh random id: only a hash collision with a live owner
        await db.close()
        raise RuntimeError("Could not take this store's owner lock; open the store again.")
    return owner, db


async def interrupt_leftover_turns(db: AsyncConnection[DictRow]) -> int:
    """Mark `interrupted` the `streaming` answers of stores that are gone; how many. Run it on a connection
    that holds no owner lock (a session's own advisory locks are re-entrant, so it would see them free).
    """
    rows = await (await db.execute("SELECT DISTINCT owner FROM messages WHERE status = 'streaming'")).fetchall()
    gone: list[str] = []
    for row in rows:
        owner = row["owner"]
        if owner is None:
            continue
        locked = await (await db.execute(_OWNER_LOCK, (owner,))).fetchone()
        if locked and locked["locked"]:  # nobody holds it: its store is closed or its process died
            gone.append(owner)
            await db.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (owner,))
    cursor = await db.execute(
        "UPDATE messages SET status = 'interrupted', content = '', error = %s "
        "WHERE status = 'streaming' AND (owner IS NULL OR owner = ANY(%s))",
        (INTERRUPTED_ERROR, gone),
    )
    if cursor.rowcount:
        logger.warning("Marked %d answer(s) left unfinished by a stopped server as interrupted.", cursor.rowcount)
    return cursor.rowcount


async def _start(
    db: AsyncConnection[DictRow],
    session: Session,
    user_message: StoredMessage | None,
    answer: StoredMessage,
    replaces: str | None,
    owner: str,
) -> TurnStart:
    # The row lock makes concurrent starts on one session wait for each other, across replicas. Checks and
    # writes are few statements: each is a round trip, and a turn's start is on the path of every message.
    locked = await db.execute(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE session_id = s.id AND status = 'streaming') AS busy "
        "FROM sessions s WHERE id = %s FOR UPDATE",
        (session.id,),
    )
    row = await locked.fetchone()
    if row is None:
        return TurnStart.NO_SESSION
    if row["busy"]:
        return TurnStart.BUSY
    if replaces is not None:
        last = await (
            await db.execute(
                "SELECT id, status, (SELECT count(*) FROM messages WHERE id = %s AND session_id = %s) AS found "
                "FROM messages WHERE session_id = %s ORDER BY seq DESC LIMIT 1",
                (replaces, session.id, session.id),
            )
        ).fetchone()
        if last is None or not last["found"]:
            return TurnStart.NO_MESSAGE
        if last["id"] != replaces or last["status"] not in RETRYABLE:
            return TurnStart.NOT_RETRYABLE
        await db.execute("DELETE FROM messages WHERE id = %s", (replaces,))
    messages = [(m, None) for m in ([user_message] if user_message else [])] + [(answer, owner)]
    await db.execute(
        "UPDATE sessions SET title = %s, model_id = %s, updated_at = %s WHERE id = %s",
        (session.title, session.model_id, max([session.updated_at, *(m.created_at for m, _ in messages)]), session.id),
    )
    placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(messages))
    await db.execute(
        f"INSERT INTO messages ({MESSAGE_COLUMNS}, owner) VALUES {placeholders}",
        [value for m, by in messages for value in message_values(m, by)],
    )
    return TurnStart.STARTED


class _Refused(Exception):
    """Rolls back a turn's start that was refused (nothing is stored unless it starts)."""

    def __init__(self, outcome: TurnStart) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome
