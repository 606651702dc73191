"""Files and folders that hold chats and keys: created readable by their owner only, whatever the umask.

The history database holds every conversation and the keys file every provider key, so neither may be
readable by other users of the machine. Both are created here, before anything writes to them: SQLite then
gives its `-wal` and `-shm` files the database's own mode. Existing files and folders are left as they
are, since they may be shared on purpose (a data directory of `.`, say).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """`path` as a directory; when it has to be created, with mode 0700 (its missing parents as usual)."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file; when it has to be created, empty with mode 0600, in a `private_dir` parent."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    return path
