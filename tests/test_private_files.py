"""The data directory, the history database and the keys file are created readable by their owner only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from genai_chatbot.chat.records import Session
from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore
from genai_chatbot.files import private_dir, private_file
from genai_chatbot.secrets import FileKeySource


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """Umask 0: whatever is not asked for explicitly would come out world-readable (and writable)."""
    previous = os.umask(0)
    yield
    os.umask(previous)


async def test_the_history_database_and_its_data_directory_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SQLiteHistoryStore(data / "chat.sqlite3")
    await store.create_session(Session(id="s1", user_id="default", title="t", model_id="local/x"))
    assert mode(data) == 0o700
    assert mode(data / "chat.sqlite3") == 0o600
    # SQLite gives its write-ahead log and shared-memory files the database's mode.
    assert {p.name: mode(p) for p in data.iterdir()} == {
        "chat.sqlite3": 0o600,
        "chat.sqlite3-wal": 0o600,
        "chat.sqlite3-shm": 0o600,
        "chat.sqlite3.turns": 0o700,  # the turn owners' lock files
    }
    assert {p.name: mode(p) for p in (data / "chat.sqlite3.turns").iterdir()} == {
        p.name: 0o600 for p in (data / "chat.sqlite3.turns").iterdir()
    }
    assert any((data / "chat.sqlite3.turns").iterdir())
    await store.close()


async def test_the_keys_file_and_its_directory_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "keys.json"
    assert await FileKeySource(path).read() == {}
    assert mode(path.parent) == 0o700 and mode(path) == 0o600


def test_existing_files_and_folders_keep_their_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    (shared / "chat.sqlite3").write_text("")
    (shared / "chat.sqlite3").chmod(0o640)
    assert private_dir(shared) == shared and mode(shared) == 0o755
    assert private_file(shared / "chat.sqlite3").read_text() == "" and mode(shared / "chat.sqlite3") == 0o640
    assert mode(private_file(tmp_path / "a" / "b" / "new.db")) == 0o600 and mode(tmp_path / "a" / "b") == 0o700
