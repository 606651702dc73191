"""Group commit's WAL checkpoints run beside the batches: they neither hold the writes after them nor fail them."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from genai_chatbot.chat.sqlite_db import SQLiteDatabase
from genai_chatbot.governance import sqlite_batches
from genai_chatbot.governance.sqlite_batches import GroupCommit


def _count(db: sqlite3.Connection, writes: list[int]) -> list[int]:
    db.executemany("INSERT INTO seen (n) VALUES (?)", [(n,) for n in writes])
    return writes


async def _commits(tmp_path: Path) -> tuple[SQLiteDatabase, GroupCommit[int, int]]:
    database = SQLiteDatabase(tmp_path / "chat.sqlite3")
    await database.run(lambda db: db.execute("CREATE TABLE seen (n INTEGER)"))
    return database, GroupCommit(database, _count)


async def test_writes_go_on_while_a_checkpoint_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_checkpoint(db: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)  # a disk that takes its time to sync

    monkeypatch.setattr(sqlite_batches, "CHECKPOINT_EVERY", 2)
    monkeypatch.setattr(sqlite_batches, "_checkpoint", slow_checkpoint)
    database, commits = await _commits(tmp_path)
    try:
        assert list(await asyncio.gather(commits.run(1), commits.run(2))) == [1, 2]
        # The second commit starts a checkpoint that does not end before the test: no write waits for it.
        assert await asyncio.wait_for(commits.run(3), 5) == 3
        assert await asyncio.wait_for(commits.run(4), 5) == 4
        await asyncio.to_thread(started.wait, 10)
        assert started.is_set()
    finally:
        release.set()
        await database.close()
    with sqlite3.connect(tmp_path / "chat.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM seen").fetchone() == (4,)


async def test_a_failed_checkpoint_leaves_the_committed_writes_their_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing_checkpoint(db: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_batches, "CHECKPOINT_EVERY", 1)
    monkeypatch.setattr(sqlite_batches, "_checkpoint", failing_checkpoint)
    database, commits = await _commits(tmp_path)
    try:
        with caplog.at_level(logging.WARNING):
            assert await commits.run(1) == 1
            assert await commits.run(2) == 2
            for _ in range(100):  # the checkpoint's thread reports back
                if "Could not checkpoint" in caplog.text:
                    break
                await asyncio.sleep(0.01)
        assert "Could not checkpoint the usage database's WAL: disk I/O error" in caplog.text
    finally:
        await database.close()
