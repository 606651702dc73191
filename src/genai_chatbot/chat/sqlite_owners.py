"""Which processes are alive among those that stream turns into one SQLite file.

Each store that opens the file holds an exclusive `flock` on a file of its own, `<database>.turns/<id>.lock`,
until it closes or its process dies (the kernel releases the lock even on `kill -9`). A `streaming` answer
records the id of the store that streams it, so a store that opens the file marks `interrupted` only the
answers of stores that are gone, never those of another server (a replica, or a CLI command) still running.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from genai_chatbot.chat.records import new_id

if sys.platform != "win32":
    import fcntl


def _directory(database: Path) -> Path:
    return database.with_name(database.name + ".turns")


class TurnOwner:
    """This store's claim: an id, and the lock that tells other processes it is alive."""

    def __init__(self, database: Path) -> None:
        self.id = new_id()
        self._path = _directory(database) / f"{self.id}.lock"
        self._fd: int | None = None
        if sys.platform == "win32":
            return
        self._path.parent.mkdir(mode=0o700, exist_ok=True)
        # Locked under a temporary name, then renamed: a `<id>.lock` that exists is always locked while its
        # owner lives, so another process never mistakes a store that is still opening for a dead one.
        claiming = self._path.with_suffix(".claiming")
        self._fd = os.open(claiming, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(claiming, self._path)

    def release(self) -> None:
        """Give up the claim (the store is closing): its turns have all ended by now."""
        if self._fd is None:
            return
        self._path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def live_owners(database: Path) -> set[str]:
    """The ids of the stores whose processes still hold their lock; lock files of dead ones are removed.

    Without `flock` (Windows) no owner can be known alive: every leftover `streaming` answer is interrupted.
    """
    if sys.platform == "win32":
        return set()
    alive: set[str] = set()
    directory = _directory(database)
    for path in directory.glob("*.lock") if directory.is_dir() else ():
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # released or cleaned up meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alive.add(path.stem)
        else:
            path.unlink(missing_ok=True)  # its process is gone
        finally:
            os.close(fd)
    return alive
