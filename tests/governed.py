"""Two real servers sharing one database, as two replicas do, with a fake OpenAI upstream that reports usage.

`Deployment` builds each server from settings alone (`create_app(settings)`), so each has its own chat
service, stores and governor: nothing is shared between them but the database. Every request to the fake
upstream uses 9 prompt and 3 completion tokens; at the test price (1,000 and 2,000 US dollars per million)
a request costs exactly 0.015 dollars.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake_openai import FakeOpenAI
from genai_chatbot.api.app import create_app
from genai_chatbot.auth.api_keys import new_api_key
from genai_chatbot.auth.users import UserAccount
from genai_chatbot.config import Settings
from genai_chatbot.stores import select_store

MODEL = "fake/gpt-4o-mini"
COST = 0.015  # 9 prompt tokens at $1,000/M + 3 completion tokens at $2,000/M
TOKENS = 12
ASK = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(params=["sqlite", "postgres", "dynamodb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param in ("postgres", "dynamodb"):
        url: str = request.getfixturevalue(f"{request.param}_url")
        return url
    return f"sqlite:///{tmp_path}/chat.sqlite3"


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def governed_settings(tmp_path: Path, database_url: str, upstream: FakeOpenAI, **governance: Any) -> Settings:
    """api-keys auth, one priced model on the fake upstream, and the `governance` settings given."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        auth="api-keys",
        local={"enabled": False},
        openai_compatible=[{"name": "fake", "base_url": f"{upstream.url}/v1", "models": ["gpt-4o-mini"]}],
        default_model=MODEL,
        prices={MODEL: {"input_per_million": 1000, "output_per_million": 2000}},
        **governance,
    )


def add_users(settings: Settings, *users: UserAccount) -> dict[str, str]:
    """Store `users` with one API key each; their keys by name."""

    async def work() -> dict[str, str]:
        store = select_store(settings).user_store()
        keys: dict[str, str] = {}
        try:
            for user in users:
                await store.add_user(user)
                keys[user.name], record = new_api_key(user.name)
                await store.add_key(record)
        finally:
            await store.close()
        return keys

    return asyncio.run(work())


@dataclass
class Deployment:
    """Servers on one database and the users' keys; `client(user, server)` talks to one of them."""

    urls: list[str]
    keys: dict[str, str]
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, user: str, server: int = 0) -> httpx.Client:
        client = httpx.Client(
            base_url=self.urls[server], headers={"Authorization": f"Bearer {self.keys[user]}"}, timeout=30
        )
        self.clients.append(client)
        return client

    def ask(self, user: str, server: int) -> httpx.Response:
        return self.client(user, server).post("/v1/chat/completions", json=ASK)


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Any]:
    """`deploy(settings, *users, servers=2)`: that many servers on the settings' database, started."""
    from conftest import LiveServer  # here: conftest imports this module's fixtures

    with ExitStack() as stack:

        def start(settings: Settings, *users: UserAccount, servers: int = 2) -> Deployment:
            keys = add_users(settings, *users)
            lives = [stack.enter_context(LiveServer(create_app(settings))) for _ in range(servers)]
            deployment = Deployment([live.url for live in lives], keys)
            stack.callback(lambda: [c.close() for c in deployment.clients])
            return deployment

        yield start


def fresh_minute(margin: float = 10.0) -> None:
    """Wait for the next minute when this one ends within `margin` s, so that a test counting requests of one
    minute does not straddle two (per-minute windows are the behaviour under test, not a race)."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)
