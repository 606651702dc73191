"""Moving a deployment's state between stores: `store export` writes it to a file, `store import` reads it.

Works between any two stores (SQLite, PostgreSQL, and any other `HistoryStore` / `UserStore`), through the
contracts only; the file format is `export_format.py`. What is promised:

- Export writes to `FILE.partial`, reads the file back and checks its totals, then renames it: a `FILE`
  that exists is whole.
- Import reads the whole file through before it writes anything, so a truncated or damaged file, an
  unknown record or a newer format imports nothing. Then each user (with their keys) and each session
  (with its messages) is one transaction: all of it or none of it.
- Duplicates are skipped, never overwritten: a session whose id, a user whose name or a key whose prefix
  the store holds already is kept as the store has it, and counted as skipped. Importing a file again
  after an interruption therefore adds exactly what is missing.
- Nothing is dropped silently: every record of the file ends up imported or counted as skipped, and each
  imported session, user and key is read back from the store and compared; a difference is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from genai_chatbot.auth.users import UserStore
from genai_chatbot.chat.store import HistoryStore
from genai_chatbot.export_format import Counts, ExportWriter, SessionEntry, UserEntry, read_export, scan_export
from genai_chatbot.files import private_file


class ImportMismatchError(RuntimeError):
    """What the store holds after an import differs from the file: the message says what and where."""


async def export_store(history: HistoryStore, users: UserStore, path: Path, source: str) -> Counts:
    """Write every user, key, session and message to `path`; the totals, checked against the file."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    private_file(partial)  # it holds every chat and the key hashes
    try:
        with partial.open("w", encoding="utf-8") as out:
            writer = ExportWriter(out)
            writer.header(source)
            for user in await users.list_users():
                writer.user(user, await users.list_keys(user.name))
            async for session, messages in history.all_sessions():
                writer.session(session, messages)
            written = writer.end()
        with partial.open(encoding="utf-8") as back:
            read = scan_export(back, str(partial))
        if read != written:
            raise ImportMismatchError(f"Wrote {written} to {partial} but it reads back as {read}; export again.")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What the file held, what was imported and what was skipped (already in the store, kept as it was)."""

    in_file: Counts
    imported: Counts
    skipped: Counts


def _add(counts: Counts, sessions: int = 0, messages: int = 0, users: int = 0, keys: int = 0) -> Counts:
    return Counts(counts.sessions + sessions, counts.messages + messages, counts.users + users, counts.api_keys + keys)


async def import_store(history: HistoryStore, users: UserStore, path: Path) -> ImportReport:
    """Import the file at `path` (see the module docstring); `ExportFormatError`, `ImportMismatchError`."""
    with path.open(encoding="utf-8") as source:
        in_file = scan_export(source, str(path))  # the whole file is valid before anything is written
    imported = skipped = Counts()
    added_sessions: set[str] = set()
    with path.open(encoding="utf-8") as source:
        for entry in read_export(source, str(path)):
            if isinstance(entry, UserEntry):
                user_added, keys_added = await users.import_user(entry.user, entry.keys)
                imported = _add(imported, users=int(user_added), keys=keys_added)
                skipped = _add(skipped, users=int(not user_added), keys=len(entry.keys) - keys_added)
            elif await history.import_session(entry.session, entry.messages):
                imported = _add(imported, sessions=1, messages=len(entry.messages))
                added_sessions.add(entry.session.id)
            else:
                skipped = _add(skipped, sessions=1, messages=len(entry.messages))
    report = ImportReport(in_file, imported, skipped)
    if _add(imported, skipped.sessions, skipped.messages, skipped.users, skipped.api_keys) != in_file:
        raise ImportMismatchError(
            f"{path} holds {in_file}, but {imported} were imported and {skipped} skipped: the file changed while "
            "it was imported. Import it again (what is stored already is skipped)."
        )
    await _check_stored(history, users, path, added_sessions)
    return report


async def _check_stored(history: HistoryStore, users: UserStore, path: Path, added_sessions: set[str]) -> None:
    """Read back what the import stored and compare it with the file; `ImportMismatchError` at the first gap."""
    with path.open(encoding="utf-8") as source:
        for entry in read_export(source, str(path)):
            if isinstance(entry, UserEntry):
                if await users.get_user(entry.user.name) is None:
                    raise ImportMismatchError(
                        f"User {entry.user.name!r} of {path} is not in the store after the import."
                    )
                stored_keys = {key.prefix for key in await users.list_keys(entry.user.name)}
                missing = [key.prefix for key in entry.keys if key.prefix not in stored_keys]
                if missing:
                    raise ImportMismatchError(
                        f"API keys {', '.join(missing)} of user {entry.user.name!r} are not in the store after the "
                        "import: a key with that prefix belongs to another user there."
                    )
            elif entry.session.id in added_sessions:
                await _check_session(history, entry, path)


async def _check_session(history: HistoryStore, entry: SessionEntry, path: Path) -> None:
    session = entry.session
    stored = await history.get_session(session.user_id, session.id)
    messages = await history.list_messages(session.id)
    if stored != session or [m.id for m in messages] != [m.id for m in entry.messages]:
        raise ImportMismatchError(
            f"Session {session.id!r} of {path} reads back differently after the import ({len(messages)} messages "
            f"stored, {len(entry.messages)} in the file); check the store and import again."
        )
