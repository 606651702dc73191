"""The export file of `genai-chatbot store export` / `import`: JSON Lines, one record a line, both directions.

The one place that turns sessions, messages, users and keys into lines and back, so what is written is
exactly what is read. A file reads:

    {"type": "header", "format": "genai-chatbot-export", "version": 2, "source": "sqlite", "created_at": ...}
    {"type": "user", "name": ..., "role": ..., "groups": [...], "disabled": ..., "created_at": ..., "api_keys": 1}
    {"type": "api_key", "prefix": ..., "secret_sha256": ..., "user": ..., "created_at": ..., ...}
    {"type": "session", "id": ..., "user_id": ..., ..., "messages": 2}
    {"type": "message", "id": ..., "session_id": ..., ..., "feedback": {"rating": ..., ...} or null}
    {"type": "message", ...}
    {"type": "end", "sessions": 1, "messages": 2, "users": 1, "api_keys": 1}

A user's keys follow it and a session's messages follow it, each announced by its count; the `end` line
repeats the totals, so a truncated file, a lost line or a stray one is an error, never a smaller import.
Every field is kept, timestamps as JSON numbers (Python writes floats in their shortest exact form, so they
read back to the same double). A key is its prefix and the SHA-256 of its secret: no clear key exists to
export. Records refuse unknown fields: a field this version cannot store is an error, not a silent loss.
A `streaming` answer (a turn in flight while the export ran) is read back as `interrupted`, as the store it
came from would mark it at its next start.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from genai_chatbot.auth.principal import Role as UserRole
from genai_chatbot.auth.users import ApiKeyRecord, UserAccount
from genai_chatbot.chat.records import INTERRUPTED_ERROR, Feedback, MessageStatus, Rating, Session, StoredMessage
from genai_chatbot.governance.settings import Limits
from genai_chatbot.models.types import Role as MessageRole

FORMAT: Literal["genai-chatbot-export"] = "genai-chatbot-export"
#: The version this code writes; it reads this one and older ones, and refuses newer ones.
VERSION = 2  # 2: users carry their own limits


class ExportFormatError(ValueError):
    """The file is not a whole export this version can read; the message names the line and the fix."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeaderRecord(_Record):
    type: Literal["header"]
    format: Literal["genai-chatbot-export"]
    version: int
    source: str
    created_at: float


class UserRecord(_Record):
    type: Literal["user"]
    name: str
    role: UserRole
    groups: list[str]
    disabled: bool
    created_at: float
    api_keys: int = Field(ge=0)
    #: The user's own budgets and rate limits (format version 2); absent in version 1 files.
    limits: Limits | None = None


class KeyRecord(_Record):
    type: Literal["api_key"]
    prefix: str
    secret_sha256: str
    user: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None


class SessionRecord(_Record):
    type: Literal["session"]
    id: str
    user_id: str
    title: str
    model_id: str
    system_prompt: str | None
    created_at: float
    updated_at: float
    messages: int = Field(ge=0)


class FeedbackRecord(_Record):
    rating: Rating
    comment: str | None
    created_at: float


class MessageRecord(_Record):
    type: Literal["message"]
    id: str
    session_id: str
    role: MessageRole
    content: str
    status: MessageStatus
    model_id: str | None
    params: dict[str, Any]
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None
    created_at: float
    feedback: FeedbackRecord | None


class EndRecord(_Record):
    type: Literal["end"]
    sessions: int
    messages: int
    users: int
    api_keys: int


_Any = Annotated[
    HeaderRecord | UserRecord | KeyRecord | SessionRecord | MessageRecord | EndRecord, Field(discriminator="type")
]
_RECORD: TypeAdapter[_Any] = TypeAdapter(_Any)


@dataclass(frozen=True, slots=True)
class Counts:
    """What an export holds, or what an import stored: the four totals the `end` line carries."""

    sessions: int = 0
    messages: int = 0
    users: int = 0
    api_keys: int = 0

    def __str__(self) -> str:
        return f"{self.sessions} sessions / {self.messages} messages / {self.users} users / {self.api_keys} API keys"

    def plus(self, entry: Entry) -> Counts:
        """These counts with `entry` (a user with their keys, or a session with its messages) added."""
        if isinstance(entry, UserEntry):
            return Counts(self.sessions, self.messages, self.users + 1, self.api_keys + len(entry.keys))
        return Counts(self.sessions + 1, self.messages + len(entry.messages), self.users, self.api_keys)


@dataclass(frozen=True, slots=True)
class UserEntry:
    """A user with every one of their keys."""

    user: UserAccount
    keys: list[ApiKeyRecord]


@dataclass(frozen=True, slots=True)
class SessionEntry:
    """A session with every one of its messages, in order."""

    session: Session
    messages: list[StoredMessage]


Entry = UserEntry | SessionEntry


# Writing ------------------------------------------------------------------------------------------------


def _line(record: _Record) -> str:
    # Text stays readable (UTF-8), but the two Unicode line separators are escaped: tools that split lines
    # on them (Python's str.splitlines, JavaScript) must still see one record a line.
    text = json.dumps(record.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


class ExportWriter:
    """Writes an export to `out`: `header()`, then users and sessions, then `end()`; counts as it goes."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._counts = Counts()

    @property
    def counts(self) -> Counts:
        return self._counts

    def header(self, source: str) -> None:
        header = HeaderRecord(type="header", format=FORMAT, version=VERSION, source=source, created_at=time.time())
        self._out.write(_line(header))

    def user(self, user: UserAccount, keys: list[ApiKeyRecord]) -> None:
        self._out.write(_line(_user_record(user, len(keys))))
        self._out.writelines(_line(_key_record(key)) for key in keys)
        self._counts = self._counts.plus(UserEntry(user, keys))

    def session(self, session: Session, messages: list[StoredMessage]) -> None:
        self._out.write(_line(_session_record(session, len(messages))))
        self._out.writelines(_line(_message_record(m)) for m in messages)
        self._counts = self._counts.plus(SessionEntry(session, messages))

    def end(self) -> Counts:
        c = self._counts
        self._out.write(
            _line(EndRecord(type="end", sessions=c.sessions, messages=c.messages, users=c.users, api_keys=c.api_keys))
        )
        return c


def _user_record(user: UserAccount, keys: int) -> UserRecord:
    return UserRecord(
        type="user",
        name=user.name,
        role=user.role,
        groups=list(user.groups),
        disabled=user.disabled,
        created_at=user.created_at,
        api_keys=keys,
        limits=user.limits,
    )


def _key_record(key: ApiKeyRecord) -> KeyRecord:
    return KeyRecord(
        type="api_key",
        prefix=key.prefix,
        secret_sha256=key.secret_hash,
        user=key.user,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


def _session_record(session: Session, messages: int) -> SessionRecord:
    return SessionRecord(type="session", messages=messages, **asdict(session))


def _message_record(message: StoredMessage) -> MessageRecord:
    return MessageRecord(type="message", **asdict(message))  # the feedback too, as a nested object


# Reading ------------------------------------------------------------------------------------------------


def _user(r: UserRecord) -> UserAccount:
    return UserAccount(
        name=r.name, role=r.role, groups=tuple(r.groups), disabled=r.disabled, created_at=r.created_at, limits=r.limits
    )


def _key(r: KeyRecord) -> ApiKeyRecord:
    return ApiKeyRecord(
        prefix=r.prefix,
        secret_hash=r.secret_sha256,
        user=r.user,
        created_at=r.created_at,
        expires_at=r.expires_at,
        revoked_at=r.revoked_at,
        last_used_at=r.last_used_at,
    )


def _session(r: SessionRecord) -> Session:
    return Session(**r.model_dump(exclude={"type", "messages"}))


def _message(r: MessageRecord) -> StoredMessage:
    message = StoredMessage(**r.model_dump(exclude={"type", "feedback"}))
    if r.feedback:
        message.feedback = Feedback(**r.feedback.model_dump())
    if message.status == "streaming":  # see the module docstring
        message.status, message.content, message.error = "interrupted", "", INTERRUPTED_ERROR
    return message


class _Lines:
    """The records of a file, parsed and validated one line at a time, with the line number for errors."""

    def __init__(self, source: IO[str], name: str) -> None:
        self._source = source
        self._name = name
        self.number = 0

    def error(self, problem: str) -> ExportFormatError:
        return ExportFormatError(f"{self._name}, line {self.number}: {problem}")

    def next(self) -> _Any | None:
        text = self._source.readline()
        if not text:
            return None
        self.number += 1
        if not text.endswith("\n"):
            raise self.error("the line is cut off (the file is truncated); export it again.")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.error(f"not a JSON object ({exc.msg}); the file is damaged, export it again.") from None
        if isinstance(data, dict) and data.get("type") not in _KNOWN_TYPES:
            raise self.error(
                f"unknown record type {data.get('type')!r}; it holds {', '.join(sorted(_KNOWN_TYPES))} "
                "(a file from a newer genai-chatbot needs that version to import it)."
            )
        try:
            return _RECORD.validate_python(data)
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'record'}: {e['msg']}" for e in exc.errors())
            raise self.error(f"invalid record ({details}).") from None

    def expect(self, kind: type[_Record], what: str) -> Any:
        record = self.next()
        if record is None:
            raise self.error(f"the file ends where {what} should follow (it is truncated); export it again.")
        if not isinstance(record, kind):
            raise self.error(f"expected {what}, found a record of type {record.type!r}.")
        return record


_KNOWN_TYPES = {"header", "user", "api_key", "session", "message", "end"}


def read_export(source: IO[str], name: str = "export") -> Iterator[Entry]:
    """The users and sessions of an export, in file order; at its end, after checking the `end` totals.

    Raises `ExportFormatError` naming the line for a missing or newer header, a record that does not fit
    (unknown type or field, a message of another session, a count that does not match) and a truncated
    file. Callers that must not act on a bad file read it through once first (`scan_export`).
    """
    lines = _Lines(source, name)
    header = lines.next()
    if not isinstance(header, HeaderRecord):
        raise lines.error("this is not a genai-chatbot export (its first line must be the header).")
    if header.version > VERSION:
        raise lines.error(
            f"the file is format version {header.version}, newer than the {VERSION} this genai-chatbot reads; "
            "import it with the version that exported it, or newer."
        )
    seen = Counts()
    while (record := lines.next()) is not None:
        if isinstance(record, UserRecord):
            keys = [
                _key(lines.expect(KeyRecord, f"API key {i + 1} of user {record.name!r}"))
                for i in range(record.api_keys)
            ]
            for key in keys:
                if key.user != record.name:
                    raise lines.error(f"API key {key.prefix} belongs to {key.user!r}, not to user {record.name!r}.")
            entry: Entry = UserEntry(_user(record), keys)
            seen = seen.plus(entry)
            yield entry
        elif isinstance(record, SessionRecord):
            messages = [
                _message(lines.expect(MessageRecord, f"message {i + 1} of session {record.id!r}"))
                for i in range(record.messages)
            ]
            for message in messages:
                if message.session_id != record.id:
                    raise lines.error(
                        f"message {message.id} belongs to session {message.session_id!r}, not {record.id!r}."
                    )
            entry = SessionEntry(_session(record), messages)
            seen = seen.plus(entry)
            yield entry
        elif isinstance(record, EndRecord):
            announced = Counts(record.sessions, record.messages, record.users, record.api_keys)
            if announced != seen:
                raise lines.error(f"the file announces {announced} but holds {seen}; export it again.")
            if lines.next() is not None:
                raise lines.error("records follow the end line; the file is damaged, export it again.")
            return
        else:
            raise lines.error(f"a record of type {record.type!r} cannot stand here (a count before it is wrong).")
    raise lines.error("the file ends without its end line (it is truncated); export it again.")


def scan_export(source: IO[str], name: str = "export") -> Counts:
    """The totals of a whole, valid export, read through without keeping it; `ExportFormatError` otherwise."""
    counts = Counts()
    for entry in read_export(source, name):
        counts = counts.plus(entry)
    return counts
