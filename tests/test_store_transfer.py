"""`store export` / `store import`: everything stored moves between any two stores, losslessly and checked.

Real stores (SQLite files, a real PostgreSQL from postgres.py, DynamoDB through moto) and the real command in
a subprocess. The 10,000-message round trip runs between the SQL stores; DynamoDB's is smaller (moto serves
one request at a time) but takes every path of its import. The
contract methods the transfer needs (`all_sessions`, `import_session`, `import_user`) run once per store
kind through the `stores` fixture.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from genai_chatbot.auth.users import ApiKeyRecord, UserAccount, UserStore
from genai_chatbot.chat.records import INTERRUPTED_ERROR, Feedback, Session, StoredMessage
from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore
from genai_chatbot.chat.store import HistoryStore, ImportConflictError
from genai_chatbot.config import Settings
from genai_chatbot.export_format import Counts, ExportFormatError
from genai_chatbot.governance.settings import Limits
from genai_chatbot.stores import StoreChoice, select_store
from genai_chatbot.transfer import export_store, import_store
from stores import Stores


def run_cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", "store", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GENAI_CHATBOT_DATABASE_URL": url},
    )


def choice(url: str, tmp_path: Path) -> StoreChoice:
    return select_store(Settings(data_dir=tmp_path / "data", database_url=url))


async def fill(history: HistoryStore, users: UserStore, sessions: int, per_session: int) -> None:
    """Sessions and users that use every field: each status, feedback or none, params, tokens, None values."""
    rng = random.Random(7)
    statuses = ["complete", "failed", "cancelled", "interrupted"]
    for n in range(3):
        await users.add_user(
            UserAccount(f"user{n}@example.com", ("admin", "manager", "user")[n], (f"g{n}", "all"), n == 2, 1000.5 + n)
        )
    await users.add_key(
        ApiKeyRecord("0123456789ab", "a" * 64, "user0@example.com", 1001.25, None, None, 1700000000.123456)
    )
    await users.add_key(ApiKeyRecord("ba9876543210", "b" * 64, "user0@example.com", 1002.0, 1800000000.0, 1750000000.5))
    await users.add_key(ApiKeyRecord("00000000000c", "c" * 64, "user1@example.com", 1003.0))
    for s in range(sessions):
        created = 1_700_000_000 + s * 0.1 + rng.random() / 7
        session = Session(
            f"s{s:05d}",
            f"user{s % 3}@example.com",
            f"Chat {s} ✓",
            "openai/gpt-4o",
            None if s % 2 else "Be brief.",
            created,
            created,
        )
        await history.create_session(session)
        for m in range(per_session):
            answer = m % 2 == 1
            status = statuses[rng.randrange(4)] if answer else "complete"
            await history.add_message(
                StoredMessage(
                    id=f"m{s:05d}-{m:03d}",
                    session_id=session.id,
                    role="assistant" if answer else "user",
                    content=f'message {m} — {rng.random()!r}\n"quoted" \u2028 {"x" * rng.randrange(40)}',
                    status=status,  # type: ignore[arg-type]
                    model_id="openai/gpt-4o" if answer else None,
                    params={"temperature": rng.random(), "max_tokens": 256, "stop": ["\n\n"]} if answer else {},
                    error="upstream said no" if status == "failed" else None,
                    prompt_tokens=rng.randrange(1000) if answer else None,
                    completion_tokens=rng.randrange(1000) if answer else None,
                    latency_ms=rng.random() * 1000 if answer else None,
                    created_at=created + m / 3,
                )
            )
            if answer and m % 3 == 0:
                rating = "up" if m % 4 else "down"
                feedback = Feedback(rating, None if m % 5 else "comment ✓", created + m)  # type: ignore[arg-type]
                assert await history.set_feedback(session.id, f"m{s:05d}-{m:03d}", feedback)


async def everything(history: HistoryStore, users: UserStore) -> tuple[list[object], list[object]]:
    """Every session with its messages, every user with their keys: what must survive a round trip."""
    sessions: list[object] = [entry async for entry in history.all_sessions(page_size=7)]
    accounts: list[object] = [(u, await users.list_keys(u.name)) for u in await users.list_users()]
    return sessions, accounts


async def test_ten_thousand_messages_go_sqlite_to_postgres_to_sqlite_without_losing_a_field(
    tmp_path: Path, postgres_url: str
) -> None:
    source = choice(f"sqlite:///{tmp_path}/a.sqlite3", tmp_path)
    middle = choice(postgres_url, tmp_path)
    target = choice(f"sqlite:///{tmp_path}/b.sqlite3", tmp_path)
    opened = [(store.history_store(), store.user_store()) for store in (source, middle, target)]
    try:
        (a_history, a_users), (pg_history, pg_users), (b_history, b_users) = opened
        await fill(a_history, a_users, sessions=100, per_session=100)
        expected = Counts(sessions=100, messages=10_000, users=3, api_keys=3)

        assert await export_store(a_history, a_users, tmp_path / "a.jsonl", "sqlite") == expected
        report = await import_store(pg_history, pg_users, tmp_path / "a.jsonl")
        assert (report.in_file, report.imported, report.skipped) == (expected, expected, Counts())
        assert await export_store(pg_history, pg_users, tmp_path / "pg.jsonl", "postgresql") == expected
        assert (await import_store(b_history, b_users, tmp_path / "pg.jsonl")).imported == expected

        original = await everything(a_history, a_users)
        assert len(original[0]) == 100
        assert await everything(pg_history, pg_users) == original
        assert await everything(b_history, b_users) == original
        # The two files differ only in their header (source, time): the records are identical.
        a_lines = (tmp_path / "a.jsonl").read_text().split("\n")
        pg_lines = (tmp_path / "pg.jsonl").read_text().split("\n")
        assert a_lines[1:] == pg_lines[1:] and len(a_lines) == 1 + 3 + 3 + 100 + 10_000 + 1 + 1  # and the final newline
    finally:
        for history, users in opened:
            await users.close()
            await history.close()


async def test_importing_again_skips_what_is_stored_and_counts_it(stores: Stores, tmp_path: Path) -> None:
    source = choice(f"sqlite:///{tmp_path}/a.sqlite3", tmp_path)
    a_history, a_users = source.history_store(), source.user_store()
    await fill(a_history, a_users, sessions=4, per_session=3)
    await export_store(a_history, a_users, tmp_path / "a.jsonl", "sqlite")
    await a_users.close()
    await a_history.close()
    history, users = stores.history(), stores.users()

    first = await import_store(history, users, tmp_path / "a.jsonl")
    again = await import_store(history, users, tmp_path / "a.jsonl")

    assert first.imported == again.skipped == Counts(4, 12, 3, 3)
    assert again.imported == Counts()
    assert len([entry async for entry in history.all_sessions(page_size=2)]) == 4


async def test_a_session_whose_message_id_is_taken_imports_nothing_and_says_which(history_store: HistoryStore) -> None:
    await history_store.create_session(Session("here", "u", "t", "m", created_at=1.0, updated_at=1.0))
    await history_store.add_message(StoredMessage("taken", "here", "user", "hi"))
    messages = [StoredMessage("fresh", "new", "user", "a"), StoredMessage("taken", "new", "assistant", "b")]

    with pytest.raises(ImportConflictError, match=r"'taken' of session 'new' is stored already, in session 'here'"):
        await history_store.import_session(Session("new", "u", "t", "m"), messages)

    assert await history_store.get_session("u", "new") is None
    assert await history_store.list_messages("new") == []


async def test_import_session_keeps_ids_times_and_order_and_refuses_an_existing_id(
    history_store: HistoryStore,
) -> None:
    session = Session("s", "u", "t", "m", "sys", created_at=5.5, updated_at=7.25)
    messages = [StoredMessage(f"m{n}", "s", "user", f"{n}", created_at=100.0 - n) for n in range(5)]
    assert await history_store.import_session(session, messages)
    assert await history_store.get_session("u", "s") == session  # updated_at kept, not moved by the messages
    assert await history_store.list_messages("s") == messages  # file order, although the times go backwards
    assert not await history_store.import_session(
        Session("s", "other", "x", "m"), [StoredMessage("z", "s", "user", "")]
    )
    assert [m.id for m in await history_store.list_messages("s")] == [m.id for m in messages]


async def test_import_user_adds_what_is_missing_and_keeps_what_exists(user_store: UserStore) -> None:
    await user_store.add_user(UserAccount("ann", "user", created_at=1.0))
    await user_store.add_key(ApiKeyRecord("aaaaaaaaaaaa", "1" * 64, "ann", created_at=2.0))
    keys = [
        ApiKeyRecord("aaaaaaaaaaaa", "2" * 64, "ann", created_at=3.0),
        ApiKeyRecord("bbbbbbbbbbbb", "3" * 64, "ann", 4.0, 5.0, 6.0, 7.0),
    ]
    assert await user_store.import_user(UserAccount("ann", "admin", created_at=9.0), keys) == (False, 1)
    assert await user_store.get_user("ann") == UserAccount("ann", "user", created_at=1.0)
    assert await user_store.list_keys("ann") == [ApiKeyRecord("aaaaaaaaaaaa", "1" * 64, "ann", created_at=2.0), keys[1]]
    limited = UserAccount("bob", "manager", ("x",), True, 3.5, limits=Limits(budget_usd=2.5, requests_per_minute=7))
    assert await user_store.import_user(limited, []) == (True, 0)
    assert await user_store.get_user("bob") == limited
    with pytest.raises(ValueError, match="belongs to 'ann', not to 'bob'"):
        await user_store.import_user(UserAccount("bob"), [keys[1]])


async def test_a_streaming_answer_in_the_file_is_imported_as_interrupted(tmp_path: Path) -> None:
    store = SQLiteHistoryStore(tmp_path / "a.sqlite3")
    await store.create_session(Session("s", "u", "t", "m"))
    await store.add_message(StoredMessage("q", "s", "user", "hi"))
    await store.add_message(StoredMessage("a", "s", "assistant", "half an ans", status="streaming"))
    users = choice(f"sqlite:///{tmp_path}/a.sqlite3", tmp_path).user_store()
    await export_store(store, users, tmp_path / "a.jsonl", "sqlite")
    target = SQLiteHistoryStore(tmp_path / "b.sqlite3")
    await import_store(target, users, tmp_path / "a.jsonl")
    answer = (await target.list_messages("s"))[1]
    assert (answer.status, answer.content, answer.error) == ("interrupted", "", INTERRUPTED_ERROR)
    for closing in (store, users, target):
        await closing.close()


def test_the_command_exports_and_imports_with_counts_and_a_second_import_skips_everything(tmp_path: Path) -> None:
    import asyncio

    source = choice(f"sqlite:///{tmp_path}/a.sqlite3", tmp_path)

    async def prepare() -> None:
        history, users = source.history_store(), source.user_store()
        await fill(history, users, sessions=5, per_session=4)
        await users.close()
        await history.close()

    asyncio.run(prepare())
    exported = run_cli("export", str(tmp_path / "out.jsonl"), url=f"sqlite:///{tmp_path}/a.sqlite3")
    assert exported.returncode == 0, exported.stderr
    assert "Exported 5 sessions / 20 messages / 3 users / 3 API keys" in exported.stdout
    assert (tmp_path / "out.jsonl").stat().st_mode & 0o077 == 0  # every chat is in it: private
    assert not (tmp_path / "out.jsonl.partial").exists()

    imported = run_cli("import", str(tmp_path / "out.jsonl"), url=f"sqlite:///{tmp_path}/b.sqlite3")
    assert imported.returncode == 0, imported.stderr
    assert "Imported 5 sessions / 20 messages / 3 users / 3 API keys" in imported.stdout
    assert "Skipped, already in the store and kept as they are: 0 sessions / 0 messages" in imported.stdout
    again = run_cli("import", str(tmp_path / "out.jsonl"), url=f"sqlite:///{tmp_path}/b.sqlite3")
    assert "Imported 0 sessions / 0 messages / 0 users / 0 API keys" in again.stdout
    assert "kept as they are: 5 sessions / 20 messages / 3 users / 3 API keys" in again.stdout


def _damaged(text: str, how: str) -> str:
    lines = text.splitlines(keepends=True)
    if how == "truncated":
        return "".join(lines[:-3]) + lines[-3][:10]
    if how == "no end line":
        return "".join(lines[:-1])
    if how == "unknown record":
        return "".join(lines[:5]) + '{"type": "usage", "tokens": 3}\n' + "".join(lines[5:])
    if how == "newer version":
        return lines[0].replace('"version":2', '"version":3') + "".join(lines[1:])
    if how == "unknown field":
        return "".join(lines[:-2]) + lines[-2].replace('"feedback"', '"tags":[],"feedback"') + lines[-1]
    assert how == "count off"
    return "".join(lines[:-2]) + lines[-1]


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("truncated", r"line 31: the line is cut off \(the file is truncated\)"),
        ("no end line", r"ends without its end line"),
        ("unknown record", r"line 6: unknown record type 'usage'"),
        ("newer version", r"line 1: the file is format version 3, newer than the 2"),
        ("unknown field", r"line 32: invalid record \(tags: Extra inputs are not permitted\)"),
        ("count off", r"line 32: expected message 4 of session .s00004., found a record of type .end."),
    ],
)
async def test_a_bad_file_is_refused_naming_the_line_and_nothing_is_imported(
    tmp_path: Path, how: str, error: str
) -> None:
    source = choice(f"sqlite:///{tmp_path}/a.sqlite3", tmp_path)
    history, users = source.history_store(), source.user_store()
    await fill(history, users, sessions=5, per_session=4)
    await export_store(history, users, tmp_path / "good.jsonl", "sqlite")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_damaged((tmp_path / "good.jsonl").read_text(), how))
    target = choice(f"sqlite:///{tmp_path}/b.sqlite3", tmp_path)
    t_history, t_users = target.history_store(), target.user_store()

    with pytest.raises(ExportFormatError, match=error):
        await import_store(t_history, t_users, bad)

    assert [entry async for entry in t_history.all_sessions()] == []
    assert await t_users.list_users() == []
    for store in (users, history, t_users, t_history):
        await store.close()


@pytest.mark.slow  # about 700 moto requests, served one at a time
async def test_a_dynamodb_round_trip_is_lossless_with_a_session_beyond_one_transaction(
    tmp_path: Path, dynamodb_url: str
) -> None:
    """Smaller than the 10,000-message SQL round trip (moto serves one request at a time), but through every
    path of the DynamoDB import: sessions in one transaction and one of 150 messages (messages first, the
    session item last)."""
    source = choice(f"sqlite:///{tmp_path}/a.sqlite3", tmp_path)
    middle = choice(dynamodb_url, tmp_path)
    target = choice(f"sqlite:///{tmp_path}/b.sqlite3", tmp_path)
    opened = [(store.history_store(), store.user_store()) for store in (source, middle, target)]
    try:
        (a_history, a_users), (d_history, d_users), (b_history, b_users) = opened
        await fill(a_history, a_users, sessions=6, per_session=20)
        long = Session("zz-long", "user0@example.com", "long", "m", created_at=5.0, updated_at=6.0)
        await a_history.create_session(long)
        for n in range(150):
            await a_history.add_message(StoredMessage(f"long-{n:03d}", long.id, "user", f"{n}", created_at=7.0 + n))
        await export_store(a_history, a_users, tmp_path / "a.jsonl", "sqlite")
        assert (await import_store(d_history, d_users, tmp_path / "a.jsonl")).imported == Counts(7, 270, 3, 3)
        await export_store(d_history, d_users, tmp_path / "d.jsonl", "dynamodb")
        assert (await import_store(b_history, b_users, tmp_path / "d.jsonl")).imported == Counts(7, 270, 3, 3)
        original = await everything(a_history, a_users)
        assert await everything(d_history, d_users) == original
        assert await everything(b_history, b_users) == original
    finally:
        for history, users in opened:
            await users.close()
            await history.close()


async def test_a_dynamodb_import_stopped_before_its_session_item_is_invisible_and_completed_by_importing_again(
    dynamodb_url: str,
) -> None:
    from genai_chatbot.chat.dynamodb_db import new_client
    from genai_chatbot.chat.dynamodb_items import message_item
    from genai_chatbot.chat.dynamodb_transfer import ONE_TRANSACTION, _write_all

    choice_ = select_store(Settings(database_url=dynamodb_url))
    history = choice_.history_store()
    session = Session("big", "u", "t", "m", created_at=1.0, updated_at=2.0)
    messages = [StoredMessage(f"b{n:03d}", "big", "user", f"{n}", created_at=3.0) for n in range(ONE_TRANSACTION + 2)]
    client = new_client()
    try:  # what an import killed after its message writes leaves: messages without their session item
        _write_all(
            client, f"{choice_.table_prefix}-history", [message_item(m, n) for n, m in enumerate(messages[:60], 1)]
        )
        assert await history.get_session("u", "big") is None
        assert [entry async for entry in history.all_sessions()] == []

        assert await history.import_session(session, messages)  # resumed: no conflict with its own leftovers

        assert await history.get_session("u", "big") == session
        assert await history.list_messages("big") == messages
        with pytest.raises(ImportConflictError, match="'b007' of session 'other' is stored already, in session 'big'"):
            await history.import_session(Session("other", "u", "t", "m"), [StoredMessage("b007", "other", "user", "")])
    finally:
        client.close()
        await history.close()
