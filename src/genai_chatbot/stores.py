"""Which store holds this deployment's state, picked from one setting: `database_url`.

`select_store(settings)` is the one place that reads it; `build_chat_service` takes the history store from
it and `build_user_store` the user store, so both always live in the same database. The service never
knows which store it has: each implements `HistoryStore` / `UserStore`.

`dynamodb://TABLE_PREFIX` names the tables `TABLE_PREFIX-history`, `TABLE_PREFIX-users` and
`TABLE_PREFIX-governance` (created by `genai-chatbot store init`); region, credentials and endpoint come from
the standard AWS settings.

A PostgreSQL URL may carry a password: it is kept out of reprs, and `redact_url` is what logs and errors
show instead (the server's log filter masks URL credentials too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from genai_chatbot.config import ConfigError, Settings
from genai_chatbot.redaction import redact_url

if TYPE_CHECKING:
    from genai_chatbot.auth.users import UserStore
    from genai_chatbot.chat.store import HistoryStore
    from genai_chatbot.governance.store import GovernanceStore
    from genai_chatbot.governance.usage_store import UsageStore

StoreKind = Literal["sqlite", "postgresql", "dynamodb"]

#: DynamoDB table names allow 3-255 of these characters; the longest suffix is "-governance".
_TABLE_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,240}$")


@runtime_checkable
class _OpensAtStart(Protocol):
    async def open(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """The store `database_url` names: SQLite at `path`, PostgreSQL at `url` (never in a repr), or the
    DynamoDB tables of `url`'s prefix."""

    kind: StoreKind
    path: Path | None = None
    url: str = field(default="", repr=False)

    @property
    def table_prefix(self) -> str:
        """The DynamoDB table prefix of a `dynamodb://TABLE_PREFIX` URL."""
        return self.url.partition("://")[2]

    @property
    def where(self) -> str:
        """The store's location for messages, without credentials."""
        if self.kind == "dynamodb":
            from genai_chatbot.chat.dynamodb_db import table_names, where

            return f"DynamoDB tables {' and '.join(table_names(self.table_prefix))} ({where()})"
        return str(self.path) if self.kind == "sqlite" else redact_url(self.url)

    def history_store(self) -> HistoryStore:
        """A new history store on this database (PostgreSQL connects at its first call, or `open()`)."""
        if self.kind == "sqlite":
            from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore

            assert self.path is not None
            return SQLiteHistoryStore(self.path)
        if self.kind == "dynamodb":
            from genai_chatbot.chat.dynamodb_store import DynamoDBHistoryStore

            return DynamoDBHistoryStore(self.table_prefix)
        from genai_chatbot.chat.postgres_store import PostgresHistoryStore

        return PostgresHistoryStore(self.url)

    def user_store(self) -> UserStore:
        """A new user store on this database."""
        if self.kind == "sqlite":
            from genai_chatbot.auth.sqlite_users import SQLiteUserStore

            assert self.path is not None
            return SQLiteUserStore(self.path)
        if self.kind == "dynamodb":
            from genai_chatbot.auth.dynamodb_users import DynamoDBUserStore

            return DynamoDBUserStore(self.table_prefix)
        from genai_chatbot.auth.postgres_users import PostgresUserStore

        return PostgresUserStore(self.url)

    def governance_store(self) -> GovernanceStore:
        """A new store of run-time group policies and the audit log on this database."""
        if self.kind == "sqlite":
            from genai_chatbot.governance.sqlite_store import SQLiteGovernanceStore

            assert self.path is not None
            return SQLiteGovernanceStore(self.path)
        if self.kind == "dynamodb":
            from genai_chatbot.governance.dynamodb_store import DynamoDBGovernanceStore

            return DynamoDBGovernanceStore(self.table_prefix)
        from genai_chatbot.governance.postgres_store import PostgresGovernanceStore

        return PostgresGovernanceStore(self.url)

    def usage_store(self) -> UsageStore:
        """A new store of usage, budget and rate-limit counters on this database."""
        if self.kind == "sqlite":
            from genai_chatbot.governance.sqlite_usage import SQLiteUsageStore

            assert self.path is not None
            return SQLiteUsageStore(self.path)
        if self.kind == "dynamodb":
            from genai_chatbot.governance.dynamodb_usage import DynamoDBUsageStore

            return DynamoDBUsageStore(self.table_prefix)
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
    if scheme == "dynamodb":
        return _dynamodb(url)
    raise ConfigError(
        f"database_url scheme {scheme!r} is not supported; use sqlite:///path/chat.sqlite3, "
        "postgresql://user:password@host:port/database or dynamodb://TABLE_PREFIX."
    )


def _dynamodb(url: str) -> StoreChoice:
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise ConfigError('database_url names DynamoDB, which needs boto3: pip install "genai-chatbot[aws]".') from None
    prefix = url.partition("://")[2]
    if not _TABLE_PREFIX.match(prefix):
        raise ConfigError(
            f"database_url {url!r} needs a table prefix of 1-240 letters, digits and '_.-' after dynamodb:// "
            "(e.g. dynamodb://genai-chatbot): the tables are PREFIX-history, PREFIX-users and PREFIX-governance."
        )
    return StoreChoice("dynamodb", url=url)


async def open_store(store: object) -> None:
    """Connect, migrate and recover now, for a store that otherwise does so at its first call.

    The server calls it at start so that an unreachable database, or a schema newer than this code, stops
    it at once with the fix instead of failing its first request.
    """
    if isinstance(store, _OpensAtStart):
        await store.open()
