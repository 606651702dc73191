"""The SQLite store's writes are real transactions, migrations included, and turns are stored safely.

A failure is forced into the second statement of a write by a trigger that `RAISE(ABORT)`s, created from a
second connection as another process would; the first statement must then be rolled back.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from conftest import make_service
from genai_chatbot.chat import sqlite_store
from genai_chatbot.chat.records import INTERRUPTED_ERROR, Session, StoredMessage
from genai_chatbot.chat.service import TurnEnded, TurnInProgressError
from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore, run_script
from genai_chatbot.chat.store import MessageGoneError, TurnStart
from genai_chatbot.config import Settings
from genai_chatbot.models.types import ChatChunk
from scripted import ScriptedProvider


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "chat.sqlite3"


def sql(path: Path, *statements: str) -> list[tuple[object, ...]]:
    """Run statements on a connection of their own; the rows of the last one."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        rows: list[tuple[object, ...]] = []
        for statement in statements:
            rows = db.execute(statement).fetchall()
        return rows
    finally:
        db.close()


def fail_on(path: Path, event: str, when: str = "1") -> None:
    sql(path, f"CREATE TRIGGER forced_failure {event} WHEN {when} BEGIN SELECT RAISE(ABORT, 'forced failure'); END")


def session(session_id: str = "s") -> Session:
    return Session(id=session_id, user_id="u", title="t", model_id="scripted/echo")


def message(message_id: str, role: str = "assistant", status: str = "complete") -> StoredMessage:
    return StoredMessage(id=message_id, session_id="s", role=role, content=message_id, status=status)  # type: ignore[arg-type]


async def test_a_message_whose_second_statement_fails_is_not_stored(path: Path) -> None:
    store = SQLiteHistoryStore(path)
    await store.create_session(session())
    fail_on(path, "BEFORE UPDATE ON sessions")  # add_message: INSERT the message, then UPDATE its session
    with pytest.raises(sqlite3.IntegrityError, match="forced failure"):
        await store.add_message(message("a"))
    assert await store.list_messages("s") == []
    await store.close()


async def test_a_replacement_whose_insert_fails_keeps_the_replaced_message(path: Path) -> None:
    store = SQLiteHistoryStore(path)
    await store.create_session(session())
    await store.add_message(message("old", status="failed"))
    fail_on(path, "BEFORE INSERT ON messages")  # replace_message: DELETE the old one, then INSERT
    with pytest.raises(sqlite3.IntegrityError, match="forced failure"):
        await store.replace_message("old", message("new"))
    assert [m.id for m in await store.list_messages("s")] == ["old"]
    await store.close()


async def test_replacing_a_message_that_is_gone_fails_and_stores_nothing(path: Path) -> None:
    store = SQLiteHistoryStore(path)
    await store.create_session(session())
    with pytest.raises(MessageGoneError, match="no longer exists"):
        await store.replace_message("gone", message("new"))
    assert await store.list_messages("s") == []
    await store.close()


async def test_a_turn_whose_answer_cannot_be_stored_leaves_no_user_message(path: Path) -> None:
    store = SQLiteHistoryStore(path)
    await store.create_session(session())
    fail_on(path, "BEFORE INSERT ON messages", "NEW.role = 'assistant'")
    with pytest.raises(sqlite3.IntegrityError, match="forced failure"):
        await store.begin_turn(session(), message("q", role="user"), message("a", status="streaming"), None)
    assert await store.list_messages("s") == []
    await store.close()


async def test_a_failing_migration_leaves_no_half_applied_schema(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def _m999_half_done(db: sqlite3.Connection) -> None:
        run_script(db, "CREATE TABLE half (x TEXT); INSERT INTO no_such_table VALUES (1);")

    monkeypatch.setattr(sqlite_store, "MIGRATIONS", [*sqlite_store.MIGRATIONS, _m999_half_done])
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        SQLiteHistoryStore(path)
    assert sql(path, "SELECT name FROM sqlite_master WHERE name = 'half'") == []
    applied = [row[0] for row in sql(path, "SELECT name FROM _migrations ORDER BY rowid")]
    assert applied == [m.__name__ for m in sqlite_store.MIGRATIONS[:-1]]  # the earlier ones, each whole


async def test_a_migration_that_commits_on_its_own_is_refused(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def _m999_executescript(db: sqlite3.Connection) -> None:
        db.executescript("CREATE TABLE early (x TEXT);")

    monkeypatch.setattr(sqlite_store, "MIGRATIONS", [*sqlite_store.MIGRATIONS, _m999_executescript])
    with pytest.raises(RuntimeError, match="run_script"):
        SQLiteHistoryStore(path)


async def test_the_database_allows_one_streaming_answer_per_session(path: Path) -> None:
    first, second = SQLiteHistoryStore(path), SQLiteHistoryStore(path)  # as two processes would
    await first.create_session(session())
    started = await first.begin_turn(session(), message("q1", "user"), message("a1", status="streaming"), None)
    assert started is TurnStart.STARTED
    refused = await second.begin_turn(session(), message("q2", "user"), message("a2", status="streaming"), None)
    assert refused is TurnStart.BUSY
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):  # the index, not only the service's check
        sql(path, "UPDATE messages SET status = 'streaming' WHERE id = 'q1'")
    assert [m.id for m in await second.list_messages("s")] == ["q1", "a1"]
    await first.close()
    await second.close()


async def test_answers_left_streaming_become_interrupted_when_the_store_opens(path: Path) -> None:
    crashed = SQLiteHistoryStore(path)
    await crashed.create_session(session())
    await crashed.begin_turn(session(), message("q", "user"), message("a", status="streaming"), None)
    await crashed.close()  # the process ends without finishing the answer

    reopened = SQLiteHistoryStore(path)
    answer = (await reopened.list_messages("s"))[-1]
    assert (answer.status, answer.content, answer.error) == ("interrupted", "", INTERRUPTED_ERROR)
    await reopened.close()


async def test_opening_the_store_leaves_the_answers_of_a_running_store_alone(path: Path) -> None:
    running = SQLiteHistoryStore(path)
    await running.create_session(session())
    await running.begin_turn(session(), message("q", "user"), message("a", status="streaming"), None)
    other = SQLiteHistoryStore(path)  # a second replica, or a CLI command, opening the same file
    assert [m.status for m in await other.list_messages("s")] == ["complete", "streaming"]
    assert await running.finish_message(message("a"))
    assert [m.status for m in await other.list_messages("s")] == ["complete", "complete"]
    await running.close()
    await other.close()


async def test_a_second_turn_while_one_streams_is_refused_and_stores_nothing(settings: Settings) -> None:
    chat = make_service(settings, ScriptedProvider(["partial ", None]))
    created = await chat.create_session("u", model_id="scripted/echo")
    turn = await chat.start_turn("u", created.id, "first")
    with pytest.raises(TurnInProgressError, match="one turn at a time"):
        await chat.start_turn("u", created.id, "second")
    _, stored = await chat.session_messages("u", created.id)
    assert [(m.content, m.status) for m in stored] == [("first", "complete"), ("", "streaming")]
    await turn.aclose()  # never iterated: still finalised
    _, stored = await chat.session_messages("u", created.id)
    assert stored[-1].status == "cancelled"
    await chat.store.close()


async def test_stopping_the_service_ends_a_turn_as_cancelled_with_its_text(settings: Settings) -> None:
    chat = make_service(settings, ScriptedProvider(["partial ", None]))
    created = await chat.create_session("u", model_id="scripted/echo")
    turn = await chat.start_turn("u", created.id, "question")
    events: list[object] = []
    async for item in turn:
        events.append(item)
        if isinstance(item, ChatChunk) and item.text:
            chat.stop_turns()
    end = events[-1]
    assert isinstance(end, TurnEnded)
    assert (end.message.status, end.message.content) == ("cancelled", "partial ")
    assert end.message.error is not None and "shut down" in end.message.error
    _, stored = await chat.session_messages("u", created.id)
    assert stored[-1].status == "cancelled" and stored[-1].content == "partial "
    await chat.store.close()


async def test_an_answer_whose_session_was_deleted_mid_turn_is_dropped_quietly(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    chat = make_service(settings, ScriptedProvider(["partial ", None]))
    created = await chat.create_session("u", model_id="scripted/echo")
    turn = await chat.start_turn("u", created.id, "question")
    await chat.delete_session("u", created.id)
    with caplog.at_level(logging.INFO, logger="genai_chatbot"):
        await turn.aclose()
    [record] = [r for r in caplog.records if "was not stored" in r.getMessage()]
    assert record.levelno == logging.INFO and record.exc_info is None
    await chat.store.close()
