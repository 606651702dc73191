"""A store's connections to PostgreSQL: a psycopg 3 async pool, opened at the first call or by `open()`.

Stores are built synchronously (`build_chat_service` is called outside any event loop by the CLI), so
nothing connects in a constructor: the first call, or the server's start (`stores.open_store`), connects,
applies the migrations this database lacks and refuses a schema newer than the code. The pool belongs to
the event loop that opened it, like the providers' HTTP clients.

Connections are in autocommit mode; a write of several statements runs in `async with db.transaction()`.
The URL may hold a password: errors show it redacted, and this object's repr never shows the URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from genai_chatbot.chat.postgres_migrations import migrate
from genai_chatbot.redaction import redact_url

CONNECT_TIMEOUT_SECONDS = 10
POOL_SIZE = 8


class StoreUnavailableError(RuntimeError):
    """The database cannot be reached or used; the message says where (without the password) and what to do."""


def redacted(url: str, text: str) -> str:
    """`text` with the URL's password, wherever it appears, replaced by `***`."""
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return redact_url(text)


async def connect(url: str) -> AsyncConnection[DictRow]:
    """One autocommit connection, or `StoreUnavailableError` with the cause and the fix, password hidden."""
    try:
        return await AsyncConnection.connect(
            url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
    except psycopg.Error as exc:
        raise StoreUnavailableError(
            f"Cannot connect to PostgreSQL at {redact_url(url)}: {redacted(url, str(exc)).strip()}. "
            "Check database_url (GENAI_CHATBOT_DATABASE_URL) and that the server accepts connections."
        ) from None


class PostgresDatabase:
    """The pool of one store; `connection()` for each call opens it first, once.

    `on_open` runs on the first connection, after the migrations and before any call: the history store
    claims its owner lock and recovers interrupted turns there.
    """

    def __init__(self, url: str, on_open: Callable[[AsyncConnection[DictRow]], Awaitable[None]] | None = None) -> None:
        self._url = url
        self._on_open = on_open
        self._pool: AsyncConnectionPool[AsyncConnection[DictRow]] | None = None
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:
        return "PostgresDatabase(<database_url>)"

    @property
    def url(self) -> str:
        return self._url

    async def open(self) -> None:
        """Connect, migrate, run `on_open` on that first connection, then open the pool; once."""
        async with self._opening:
            if self._pool is not None:
                return
            first = await connect(self._url)
            try:
                await migrate(first)
                if self._on_open is not None:
                    await self._on_open(first)
            finally:
                await first.close()
            pool = AsyncConnectionPool(
                self._url,
                connection_class=AsyncConnection[DictRow],
                kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
                min_size=1,
                max_size=POOL_SIZE,
                open=False,
            )
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS * 2)
            self._pool = pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        """A pooled connection (autocommit) for one call; opens the store first when needed."""
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        async with self._pool.connection() as db:
            yield db

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
