"""The usage counters as the SQLite usage store's loop connection last saw them, exact until someone else writes.

An admission whose requests are leased only reads: its budgets and tokens per minute. In a server, that read
was the admission's cost on the way to the first token (a compound SELECT of tens of microseconds, most of
it cache misses of a loop that ran other code in between). SQLite says, for one small statement, whether
that is needed: `PRAGMA data_version` changes when any *other* connection commits. While it stays, the
counters this connection read are still the database's, but for this connection's own commits, which are
the store's own batches: each batch stages its counter changes, applied when its COMMIT has returned
(`committed`), dropped when it failed. So the counters an admission reads here are exactly the committed
ones, as a SELECT would have returned them, and every other writer (another replica, worker or the CLI)
sends the next admission back to the SELECT.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

Key = tuple[str, str]  # (scope, period)

#: Counter rows kept at most; beyond it, the next admission reads them again.
MAX_ROWS = 10_000


class CommittedCounters:
    """Counter rows (requests, tokens, cost) read on one connection, valid while its data version stays."""

    def __init__(self) -> None:
        self._version: int | None = None
        self._rows: dict[Key, list[float]] = {}
        self._staged: list[tuple[Key, float, float, float]] = []
        self._released: list[Key] = []

    def lookup(self, db: sqlite3.Connection, keys: Iterable[Key]) -> tuple[int, dict[Key, list[float]] | None]:
        """The connection's data version, and copies of the rows of `keys` when they are all known and no
        other connection has committed since they were read (else None: `remember` what a SELECT reads)."""
        row = db.execute("PRAGMA data_version").fetchone()
        version = int(row[0])
        if version != self._version:
            return version, None
        rows = self._rows
        try:
            return version, {key: list(rows[key]) for key in keys}
        except KeyError:
            return version, None

    def remember(self, version: int, keys: Iterable[Key], found: dict[Key, list[float]]) -> None:
        """Keep what a SELECT read at `version` (read before it); rows it did not find count zero."""
        if version != self._version:
            self._version, self._rows = version, {}
        if len(self._rows) >= MAX_ROWS:
            self._rows = {}
        for key in keys:
            self._rows[key] = list(found.get(key, (0.0, 0.0, 0.0)))

    def stage(self, key: Key, requests: float, tokens: float, cost: float) -> None:
        """A batch's increment of a row, applied if the batch commits."""
        self._staged.append((key, requests, tokens, cost))

    def stage_release(self, key: Key) -> None:
        """A batch's giving back of one request (never below zero), applied if the batch commits."""
        self._released.append(key)

    def begin(self) -> None:
        """A batch starts: what a failed one staged is dropped."""
        self._staged, self._released = [], []

    def committed(self) -> None:
        """The batch's COMMIT returned: its changes are the database's now."""
        rows = self._rows
        for key, requests, tokens, cost in self._staged:
            row = rows.get(key)
            if row is not None:
                row[0] += requests
                row[1] += tokens
                row[2] += cost
        for key in self._released:
            row = rows.get(key)
            if row is not None and row[0] > 0:
                row[0] -= 1
        self.begin()
