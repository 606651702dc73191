"""Fixtures over every store `database_url` can name (SQLite, PostgreSQL, DynamoDB through moto): one
behavioural suite runs against each of them.

`stores` is parametrised over the kinds; it opens stores the way the server does (`select_store` on the
settings), as many as a test asks for, all on one database, as several replicas or processes would.
`history_store` and `user_store` are the first of each. conftest.py imports the fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genai_chatbot.auth.users import UserStore
from genai_chatbot.chat.store import HistoryStore
from genai_chatbot.config import Settings
from genai_chatbot.stores import StoreChoice, select_store

STORE_KINDS = ["sqlite", "postgres", "dynamodb"]


class Stores:
    """Opens stores on one database; closes, at the end of the test, those the test left open."""

    def __init__(self, kind: str, settings: Settings) -> None:
        self.kind = kind
        self.settings = settings
        self.choice: StoreChoice = select_store(settings)
        self._open: list[HistoryStore | UserStore] = []

    def history(self) -> HistoryStore:
        store = self.choice.history_store()
        self._open.append(store)
        return store

    def users(self) -> UserStore:
        store = self.choice.user_store()
        self._open.append(store)
        return store

    async def close(self, store: HistoryStore | UserStore) -> None:
        self._open.remove(store)
        await store.close()

    async def close_all(self) -> None:
        while self._open:
            await self._open.pop().close()


@pytest.fixture(params=STORE_KINDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "postgres":
        settings = Settings(data_dir=tmp_path / "data", database_url=request.getfixturevalue("postgres_url"))
    elif request.param == "dynamodb":
        settings = Settings(data_dir=tmp_path / "data", database_url=request.getfixturevalue("dynamodb_url"))
    else:
        settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/chat.sqlite3")
    opened = Stores(request.param, settings)
    yield opened
    await opened.close_all()


@pytest.fixture
def history_store(stores: Stores) -> HistoryStore:
    return stores.history()


@pytest.fixture
def user_store(stores: Stores) -> UserStore:
    return stores.users()
