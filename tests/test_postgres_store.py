"""What only the PostgreSQL store does: `database_url`, migrations, owners that die, passwords kept hidden.

The behaviour it shares with SQLite is in test_store_contract.py; here a real PostgreSQL (postgres.py)
and real processes: the CLI, and a process killed in the middle of a turn.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from conftest import LiveServer
from genai_chatbot.api.app import create_app
from genai_chatbot.chat.postgres_db import StoreUnavailableError
from genai_chatbot.chat.postgres_migrations import MIGRATIONS, SchemaTooNewError
from genai_chatbot.chat.postgres_store import PostgresHistoryStore
from genai_chatbot.chat.records import INTERRUPTED_ERROR
from genai_chatbot.chat.service import ChatService
from genai_chatbot.config import ConfigError, Settings, load_settings
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.stores import select_store
from leak_scan import register_secret, scan_text
from scripted import ScriptedProvider

PASSWORD = register_secret("s3cret-Pa55-db")  # the run fails if it shows in any log line or response


def run_cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GENAI_CHATBOT_DATABASE_URL": url},
    )


def test_database_url_picks_the_store_and_refuses_other_schemes_naming_the_supported_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert select_store(Settings(data_dir=tmp_path)).path == tmp_path / "chat.sqlite3"
    assert Settings(database_url="sqlite:///elsewhere/chat.sqlite3").database_path == Path("elsewhere/chat.sqlite3")
    assert Settings(database_url="sqlite:////srv/chat.sqlite3").database_path == Path("/srv/chat.sqlite3")
    assert select_store(Settings(database_url="postgresql://u@h/db")).kind == "postgresql"
    monkeypatch.setenv("GENAI_CHATBOT_DATABASE_URL", f"mysql://{PASSWORD}")
    with pytest.raises(ConfigError, match=r"sqlite:///path/chat\.sqlite3, postgresql://.* or dynamodb://") as refused:
        load_settings()
    assert PASSWORD not in str(refused.value)


async def test_the_password_of_database_url_shows_in_no_repr_and_no_error(tmp_path: Path) -> None:
    with socket_on_a_closed_port() as port:
        url = f"postgresql://chat:{PASSWORD}@127.0.0.1:{port}/chat"
    settings = Settings(data_dir=tmp_path, database_url=url)
    choice = select_store(settings)
    store = choice.history_store()
    assert all(PASSWORD not in text for text in (repr(settings), repr(choice), repr(store), choice.where))
    with pytest.raises(StoreUnavailableError, match=r"at postgresql://\*\*\*@127\.0\.0\.1") as e:
        await store.list_sessions("u")
    assert PASSWORD not in str(e.value)
    failed = run_cli("store", "migrate", url=url)
    assert failed.returncode == 1 and "Cannot connect" in failed.stderr
    assert PASSWORD not in failed.stdout + failed.stderr
    scan_text(failed.stdout + failed.stderr, "genai-chatbot store migrate")


def socket_on_a_closed_port() -> _ClosedPort:
    return _ClosedPort()


class _ClosedPort:
    """A port nothing listens on: bound to learn a free number, closed before use."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        return port

    def __exit__(self, *_: object) -> None:
        return None


def test_store_migrate_applies_each_migration_once_and_says_what_it_did(postgres_url: str) -> None:
    first = run_cli("store", "migrate", url=postgres_url)
    assert first.returncode == 0, first.stderr
    assert [line.split()[1] for line in first.stdout.splitlines() if line.startswith("applied ")] == [
        name for name, _ in MIGRATIONS
    ]
    again = run_cli("store", "migrate", url=postgres_url)
    assert again.returncode == 0 and "already up to date" in again.stdout


def test_store_migrate_on_sqlite_creates_the_file_it_names(tmp_path: Path) -> None:
    done = run_cli("store", "migrate", url=f"sqlite:///{tmp_path}/other.sqlite3")
    assert done.returncode == 0 and "is up to date" in done.stdout
    assert (tmp_path / "other.sqlite3").is_file()


async def test_a_schema_newer_than_the_code_is_refused_by_migrate_and_at_server_start(postgres_url: str) -> None:
    assert run_cli("store", "migrate", url=postgres_url).returncode == 0
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("INSERT INTO _migrations (name) VALUES ('m999_from_the_future')")
    refused = run_cli("store", "migrate", url=postgres_url)
    assert refused.returncode == 1 and "m999_from_the_future" in refused.stderr and "newer" in refused.stderr

    settings = Settings(database_url=postgres_url)
    chat = ChatService(
        ModelRegistry([ScriptedProvider(["hi"])]),
        select_store(settings).history_store(),
        default_model="scripted/echo",
        default_system_prompt="",
        default_max_tokens=64,
    )
    app = create_app(settings, service=chat, close_service=True)
    with pytest.raises(SchemaTooNewError, match="newer version"):
        async with app.router.lifespan_context(app):
            pass


_STREAMING_CHILD = """
import asyncio, sys
from genai_chatbot.chat.postgres_store import PostgresHistoryStore
from genai_chatbot.chat.records import Session, StoredMessage

async def main():
    store = PostgresHistoryStore(sys.argv[1])
    await store.create_session(Session(id="s", user_id="u", title="t", model_id="m"))
    user = StoredMessage(id="q", session_id="s", role="user", content="q")
    answer = StoredMessage(id="a", session_id="s", role="assistant", content="", status="streaming")
    print((await store.begin_turn(Session(id="s", user_id="u", title="t", model_id="m"), user, answer, None)).value)
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # streams until killed

asyncio.run(main())
"""


async def test_only_the_answers_of_a_killed_process_become_interrupted(postgres_url: str) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _STREAMING_CHILD, postgres_url, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and (await child.stdout.readline()).strip() == b"started"
        alive = PostgresHistoryStore(postgres_url)  # another replica opens while the child streams
        assert [m.status for m in await alive.list_messages("s")] == ["complete", "streaming"]
        await alive.close()
    finally:
        child.kill()  # no close, no cleanup: as a crash or an OOM kill
        await child.communicate()
    await asyncio.to_thread(_wait_until_owner_locks_are_released, postgres_url)
    reopened = PostgresHistoryStore(postgres_url)
    answer = (await reopened.list_messages("s"))[-1]
    assert (answer.id, answer.status, answer.error) == ("a", "interrupted", INTERRUPTED_ERROR)
    await reopened.close()


def _wait_until_owner_locks_are_released(url: str) -> None:
    """PostgreSQL ends the dead client's session (and its advisory lock) once it sees the socket closed."""
    deadline = time.monotonic() + 20
    with psycopg.connect(url, autocommit=True) as db:
        while db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() != (0,):
            assert time.monotonic() < deadline, "the killed process's session never ended"
            time.sleep(0.02)


async def test_two_servers_on_one_database_continue_a_session_and_take_one_turn_at_a_time(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url)

    def replica() -> LiveServer:
        # Each replica answers its first request at once, then holds every answer until it is cancelled.
        chat = ChatService(
            ModelRegistry([ScriptedProvider(["partial ", None], first=["Hello."])]),
            select_store(settings).history_store(),
            default_model="scripted/echo",
            default_system_prompt="",
            default_max_tokens=64,
        )
        return LiveServer(create_app(settings, service=chat, close_service=True))  # closed on its own loop

    with replica() as one, replica() as other:
        async with httpx.AsyncClient(timeout=30) as api:
            session_id = (await api.post(f"{one.url}/api/sessions", json={})).json()["id"]
            for server in (one, other):  # the session goes on from one replica to the other
                sent = await api.post(
                    f"{server.url}/api/sessions/{session_id}/messages", json={"content": "hi", "stream": False}
                )
                assert sent.status_code == 200 and sent.json()["message"]["content"] == "Hello."
            paths = [f"{url}/api/sessions/{session_id}/messages" for url in (one.url, other.url, other.url)]
            requests = [api.build_request("POST", path, json={"content": "again"}) for path in paths]
            responses = await asyncio.gather(*(api.send(request, stream=True) for request in requests))
            for response in responses:
                await response.aclose()
            assert sorted(r.status_code for r in responses) == [200, 409, 409]
            deadline = time.monotonic() + 10
            while True:  # the replica that streams notices its client left and stores the answer cancelled
                messages = (await api.get(f"{one.url}/api/sessions/{session_id}")).json()["messages"]
                if messages[-1]["status"] != "streaming" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("user", "hi", "complete"),
        ("assistant", "Hello.", "complete"),
        ("user", "hi", "complete"),
        ("assistant", "Hello.", "complete"),
        ("user", "again", "complete"),
        ("assistant", "partial ", "cancelled"),
    ]


async def test_a_write_whose_later_statement_fails_leaves_nothing_behind(postgres_url: str) -> None:
    from genai_chatbot.chat.records import Session, StoredMessage

    store = PostgresHistoryStore(postgres_url)
    first = Session(id="s", user_id="u", title="t", model_id="m", updated_at=1.0)
    await store.create_session(first)
    with psycopg.connect(postgres_url, autocommit=True) as db:  # as another process would
        db.execute(
            "CREATE FUNCTION forced_failure() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'forced failure'; END $$"
        )
        db.execute(
            "CREATE TRIGGER fail_updates BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION forced_failure()"
        )
    with pytest.raises(psycopg.errors.RaiseException, match="forced failure"):  # INSERT, then UPDATE the session
        await store.add_message(StoredMessage(id="m1", session_id="s", role="user", content="x"))
    with psycopg.connect(postgres_url, autocommit=True) as db:  # a turn's start: the session is updated first
        db.execute("DROP TRIGGER fail_updates ON sessions")
        db.execute(
            "CREATE TRIGGER fail_answers BEFORE INSERT ON messages FOR EACH ROW "
            "WHEN (NEW.status = 'streaming') EXECUTE FUNCTION forced_failure()"
        )
    later = Session(id="s", user_id="u", title="new title", model_id="m", updated_at=2.0)
    question = StoredMessage(id="q", session_id="s", role="user", content="q")
    answer = StoredMessage(id="a", session_id="s", role="assistant", content="", status="streaming")
    with pytest.raises(psycopg.errors.RaiseException, match="forced failure"):
        await store.begin_turn(later, question, answer, None)
    assert await store.list_messages("s") == []
    assert await store.get_session("u", "s") == first
    await store.close()
