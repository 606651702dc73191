"""Which store holds this deployment's state, picked from one setting: `database_url`.

`select_store(settings)` is the one place that reads it; `build_chat_service` takes the history store from
it and `build_user_store` the user store, so both always live in the same database. The service never
knows which store it has: each implements `HistoryStore` / `UserStore`.

A PostgreSQL URL may carry a password: it is kept out of reprs, and `redact_url` is what logs and errors
show instead (the server's log filter masks URL credentials too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from genai_chatbot.config import ConfigError, Settings
from genai_chatbot.redaction import MASK, mask_url_credentials

if TYPE_CHECKING:
    from genai_chatbot.auth.users import UserStore
    from genai_chatbot.chat.store import HistoryStore
    from genai_chatbot.governance.usage_store import UsageStore

StoreKind = Literal["sqlite", "postgresql"]

_PASSWORD_PARAMETER = re.compile(r"(?i)\b(password=)[^&\s]*")


def redact_url(url: str) -> str:
    """`url` with its credentials (`user:password@`) and any `password=` parameter masked: safe to show."""
    return _PASSWORD_PARAMETER.sub(rf"\g<1>{MASK}", mask_url_credentials(url))


@runtime_checkable
class _OpensAtStart(Protocol):
    async def open(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """The store `database_url` names: SQLite at `path`, or PostgreSQL at `url` (never in a repr)."""

    kind: StoreKind
    path: Path | None = None
    url: str = field(default="", repr=False)

    @property
    def where(self) -> str:
        """The store's location for messages, without credentials."""
        return str(self.path) if self.kind == "sqlite" else redact_url(self.url)

    def history_store(self) -> HistoryStore:
        """A new history store on this database (PostgreSQL connects at its first call, or `open()`)."""
        if self.kind == "sqlite":
            from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore

            assert self.path is not None
            return SQLiteHistoryStore(self.path)
        from genai_chatbot.chat.postgres_store import PostgresHistoryStore

        return PostgresHistoryStore(self.url)

    def user_store(self) -> UserStore:
        """A new user store on this database."""
        if self.kind == "sqlite":
            from genai_chatbot.auth.sqlite_users import SQLiteUserStore

            assert self.path is not None
            return SQLiteUserStore(self.path)
        from genai_chatbot.auth.postgres_users import PostgresUserStore

        return PostgresUserStore(self.url)

    def usage_store(self) -> UsageStore:
        """A new store of usage, budget and rate-limit counters on this database."""
        if self.kind == "sqlite":
            from genai_chatbot.governance.sqlite_usage import SQLiteUsageStore

            assert self.path is not None
            return SQLiteUsageStore(self.path)
        from genai_chatbot.governance.postgres_usage import PostgresUsageStore

        return PostgresUsageStore(self.url)


def select_store(settings: Settings) -> StoreChoice:
    """The store of these settings; `ConfigError` naming the supported URLs for anything else."""
    url = settings.database_url
    if url is None or url.lower().startswith("sqlite://"):
        return StoreChoice("sqlite", path=settings.database_path)
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgresql", "postgres"):
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise ConfigError(
                'database_url names PostgreSQL, which needs psycopg: pip install "genai-chatbot[postgres]".'
            ) from None
        return StoreChoice("postgresql", url=url)
    raise ConfigError(
        f"database_url scheme {scheme!r} is not supported; use sqlite:///path/chat.sqlite3 "
        "or postgresql://user:password@host:port/database."
    )


async def open_store(store: object) -> None:
    """Connect, migrate and recover now, for a store that otherwise does so at its first call.

    The server calls it at start so that an unreachable database, or a schema newer than this code, stops
    it at once with the fix instead of failing its first request.
    """
    if isinstance(store, _OpensAtStart):
        await store.open()
