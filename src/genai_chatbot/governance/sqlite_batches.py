"""Group commit for the SQLite usage store: the writes queued while one transaction runs go in the next one.

Every request is admitted and recorded with a write (bench/gateway.py --governance); one worker-thread hop
and one transaction each cost about 120 µs of CPU, most of it the hop. Under load many requests wait at
once, so they share one hop and one `BEGIN IMMEDIATE ... COMMIT`, and the store sums their increments of
one row into one upsert. Writes return their outcome (an admission's refusal included) rather than raise:
an exception is a failure of the database, and then the whole batch is rolled back and every caller of it
gets that exception. A single request waits no longer than before: a batch starts as soon as the previous
one ends.

A write asked to run `at_once` (the usage store asks it for an admission when no other turn of the process
is running: the admission then lies on the way to the first token, with nothing to batch it with) that
finds nothing running or waiting runs on the event loop instead (`_now`). A thread hop costs three times
the admission it carries (216 against 76 µs of wall time, 134 against 42 µs of CPU, measured here). It
cannot wait on the loop: the database's busy timeout is 0 meanwhile (another process writing sends it to
the thread, which waits), and it never checkpoints the WAL there (the thread's commits do), so it is
page-cache work of tens of microseconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Generic, TypeVar

from genai_chatbot.chat.sqlite_db import SQLiteDatabase
from genai_chatbot.chat.sqlite_tx import transaction

#: What the connection has outside `_now`: sqlite_db.py's 10 s busy timeout, SQLite's default checkpoints.
BUSY_TIMEOUT_MS = 10_000
WAL_AUTOCHECKPOINT_PAGES = 1000

Write = TypeVar("Write")


class _Busy(Exception):
    """Another process holds the database's write lock: the write goes to the thread, which may wait."""


Result = TypeVar("Result")


class GroupCommit(Generic[Write, Result]):
    """Hands the writes waiting together to `apply(connection, writes)` in one transaction, in arrival order;
    `apply` returns one result per write and may merge them (one upsert for many increments of a row)."""

    def __init__(
        self,
        database: SQLiteDatabase,
        apply: Callable[[sqlite3.Connection, list[Write]], list[Result]],
    ) -> None:
        self._database = database
        self._apply = apply
        self._queue: list[tuple[Write, asyncio.Future[Result]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def run(self, write: Write, *, at_once: bool = False) -> Result:
        """`write`'s result once its batch is committed; the exception that failed the batch, if one did.
        `at_once`: on the event loop if nothing else runs or waits (see the module docstring)."""
        if at_once and self._draining is None and not self._queue:
            try:
                return self._database.run_now(partial(self._now, write=write))
            except (BlockingIOError, _Busy):
                pass  # another call holds the connection, or another process the database: wait in a thread
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await asyncio.shield(future)  # a caller that gives up does not cancel the others' batch

    def _now(self, db: sqlite3.Connection, write: Write) -> Result:
        db.execute("PRAGMA busy_timeout = 0")
        db.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            return self._transaction(db, [write])[0]
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise _Busy from exc
            raise
        finally:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")

    def _transaction(self, db: sqlite3.Connection, writes: list[Write]) -> list[Result]:
        with transaction(db):
            return self._apply(db, writes)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                writes = [write for write, _ in batch]
                try:
                    results = await self._database.run(partial(self._transaction, writes=writes))
                except BaseException as exc:  # the transaction failed, and with it every write of the batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = None
