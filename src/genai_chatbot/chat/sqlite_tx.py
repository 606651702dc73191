"""Real transactions on an autocommit sqlite3 connection, for the store's writes and its migrations.

The store's connection uses `isolation_level=None` (SQLite's own autocommit): there, `with db:` opens no
transaction at all, so a write of two statements could keep the first when the second failed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One real transaction on an autocommit connection: all of the block's statements, or none of them.

    BEGIN IMMEDIATE takes the write lock at once, so a read-then-write block (check, then insert) cannot
    interleave with another process's writes.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.in_transaction:  # a RAISE(ROLLBACK) or a failed COMMIT may have ended it already
            db.execute("ROLLBACK")
        raise
    if not db.in_transaction:
        raise RuntimeError(
            "The transaction was committed before its end (sqlite3's executescript commits on its own); "
            "run the statements with run_script or execute instead."
        )
    db.execute("COMMIT")


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Execute `script`'s statements one by one inside the caller's transaction (unlike `executescript`)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n\t;"):
                db.execute(statement)
            statement = ""
    if statement.strip(" \n\t;"):
        db.execute(statement)
