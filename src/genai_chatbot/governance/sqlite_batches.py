"""Group commit for the SQLite usage store: the writes of requests ready at the same time share a transaction.

Every request is admitted and recorded with a write (bench/gateway.py --governance). Writes queue; a drain
task takes all that are waiting after one turn of the event loop and hands them to the store's `apply` in
one `BEGIN IMMEDIATE ... COMMIT`, which sums their increments of one row into one upsert. Writes return
their outcome (an admission's refusal included) rather than raise: an exception is a failure of the
database, and then the whole batch is rolled back and every caller of it gets that exception.

A batch runs on the event loop (`_now`), not in a worker thread: a thread hop cost three times the
admission it carried (216 against 76 µs of wall time, 134 against 42 µs of CPU), and under load the hand-offs
of the interpreter lock between the loop and the thread cost the server more CPU per request than the
SQL (bench: +9 to +13 % against +4 % on the loop). It cannot wait on the loop: the busy timeout is 0 there,
so a database another process is writing sends the batch to a thread, which waits (10 s); and the loop never
checkpoints the WAL (a thread does, every `CHECKPOINT_EVERY` commits, since a checkpoint may sync the
disk). What is left is page-cache work of tens to a few hundred microseconds per batch. An admission with
no other turn of the process running (`at_once`) skips the queue and the drain task altogether.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Generic, TypeVar

from genai_chatbot.chat.sqlite_db import SQLiteDatabase
from genai_chatbot.chat.sqlite_tx import transaction

logger = logging.getLogger(__name__)

#: Commits on the loop between two checkpoints of the WAL, which run in a thread (they may sync the disk).
CHECKPOINT_EVERY = 500

Write = TypeVar("Write")


class _Busy(Exception):
    """Another process holds the database's write lock: the write goes to the thread, which may wait."""


Result = TypeVar("Result")


def _checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # read to its end: no statement left running


class GroupCommit(Generic[Write, Result]):
    """Hands the writes waiting together to `apply(connection, writes)` in one transaction, in arrival order;
    `apply` returns one result per write and may merge them (one upsert for many increments of a row)."""

    def __init__(
        self,
        database: SQLiteDatabase,
        apply: Callable[[sqlite3.Connection, list[Write]], list[Result]],
        committed: Callable[[], None] | None = None,
    ) -> None:
        """`committed` is called once a batch's COMMIT on the loop's connection has returned."""
        self._database = database
        self._apply = apply
        self._committed = committed
        self._queue: list[tuple[Write, asyncio.Future[Result]]] = []
        self._draining: asyncio.Task[None] | None = None
        self._unchecked_commits = 0  # commits on the loop since the WAL was last checkpointed
        self._checkpointing: asyncio.Task[None] | None = None

    async def run(self, write: Write, *, at_once: bool = False) -> Result:
        """`write`'s result once its batch is committed; the exception that failed the batch, if one did.
        `at_once`: on the event loop if nothing else runs or waits (see the module docstring)."""
        if at_once and self._draining is None and not self._queue:
            try:
                return self._database.run_now(partial(self._now, writes=[write]))[0]
            except (BlockingIOError, _Busy):
                pass  # another call holds the connection, or another process the database: wait in a thread
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        # A caller that gives up cancels its future only: the batch still applies its write (and skips
        # the cancelled future), so the others' results stand. No shield: it cost a future per write.
        return await future

    def _now(self, db: sqlite3.Connection, writes: list[Write]) -> list[Result]:
        """The batch on `run_now`'s connection, which never waits: busy, it goes to the thread."""
        try:
            results = self._transaction(db, writes)
            self._unchecked_commits += 1
            if self._committed is not None:
                self._committed()
            return results
        except sqlite3.OperationalError as exc:
            if db.in_transaction:  # a failed COMMIT leaves it open
                db.execute("ROLLBACK")
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise _Busy from exc
            raise

    def _transaction(self, db: sqlite3.Connection, writes: list[Write]) -> list[Result]:
        with transaction(db):
            return self._apply(db, writes)

    async def _drain(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(0)  # one turn of the loop: writes of requests ready at the same time join
                batch, self._queue = self._queue, []
                writes = [write for write, _ in batch]
                try:
                    try:
                        results = self._database.run_now(partial(self._now, writes=writes))
                    except (BlockingIOError, _Busy):  # busy: wait in a thread
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
                if self._unchecked_commits >= CHECKPOINT_EVERY and self._checkpointing is None:
                    self._unchecked_commits = 0
                    self._checkpointing = asyncio.create_task(self._checkpoint())
        finally:
            self._draining = None

    async def _checkpoint(self) -> None:
        """Checkpoint the WAL in a thread beside the batches, which go on committing meanwhile (a PASSIVE
        checkpoint does not block writers). Awaited by the drain, a checkpoint (2 to 3 ms per 500 commits
        here, a disk sync included) held every turn's end and every admission behind it, and its failure
        failed a batch already committed."""
        try:
            await self._database.run(_checkpoint)
        except Exception as exc:  # the commits it follows stand; the next one checkpoints again
            logger.warning("Could not checkpoint the usage database's WAL: %s", exc)
        finally:
            self._checkpointing = None
