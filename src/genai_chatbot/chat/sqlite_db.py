"""One SQLite connection for a store, opened the same way by every store on the history database.

The history store and the user store share `chat.sqlite3` (server and CLI, each with its own connection),
so they open it alike: created private (0600 in a 0700 directory), WAL so readers never wait, foreign
keys on, and a 10 s busy timeout so a CLI write waits for the server's instead of failing at once.
sqlite3 calls are quick but blocking: each runs in a worker thread, one at a time behind a lock, which
SQLite would impose on writers anyway.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from genai_chatbot.files import private_file

T = TypeVar("T")


class SQLiteDatabase:
    """A store's connection to one SQLite file; `run(work)` calls `work(connection)` off the event loop."""

    def __init__(self, path: Path) -> None:
        private_file(path)  # chats and key hashes are private: created 0600 in a 0700 data directory
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self.connection.row_factory = sqlite3.Row
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        self._path = path
        self._now_connection: sqlite3.Connection | None = None
        self._now_lock = threading.Lock()

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """The result of `work(connection)`, run in a worker thread while no other call of this store runs."""

        def locked() -> T:
            with self._lock:
                return work(self.connection)

        return await asyncio.to_thread(locked)

    def run_now(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` on the calling thread, at once, for short work whose thread hop would cost more
        than the work (governance/sqlite_batches.py); `BlockingIOError` while another `run_now` holds it.

        It runs on a second connection that never waits and never checkpoints: its busy timeout is 0 (a
        database another connection is writing raises `sqlite3.OperationalError` SQLITE_BUSY at once), and
        its WAL is checkpointed by `run`'s connection. Set once, not per call: four PRAGMAs around each call
        cost as much as the transaction they guarded.
        """
        if not self._now_lock.acquire(blocking=False):
            raise BlockingIOError("the SQLite connection is in use")
        try:
            if self._now_connection is None:
                self._now_connection = self._open_now_connection()
            return work(self._now_connection)
        finally:
            self._now_lock.release()

    def _open_now_connection(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=0)
        connection.row_factory = sqlite3.Row
        for pragma in ("foreign_keys=ON", "synchronous=NORMAL", "busy_timeout=0", "wal_autocheckpoint=0"):
            connection.execute(f"PRAGMA {pragma}")
        return connection

    async def close(self) -> None:
        """Close both connections (the second once no `run_now` uses it)."""
        with self._now_lock:
            if self._now_connection is not None:
                self._now_connection.close()
                self._now_connection = None
        await self.run(lambda db: db.close())
