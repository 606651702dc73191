"""Fixtures that start real parts: the embedded llama.cpp model, and uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from browser import browser, page  # noqa: F401  (fixtures for the page tests)
from client_setup import share_client_setup
from dynamodb import dynamodb_endpoint, dynamodb_env, dynamodb_url  # noqa: F401  (moto's DynamoDB, when asked)
from fake_hub import hub  # noqa: F401  (a fixture for every test module)
from genai_chatbot.api.app import create_app
from genai_chatbot.chat.service import ChatService
from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore
from genai_chatbot.config import LocalModelSettings, Settings
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.providers.local import LocalProvider
from genai_chatbot.models.registry import ModelRegistry
from governed import database_url, deploy, upstream  # noqa: F401  (servers on one database, for governance)
from postgres import postgres_server, postgres_url  # noqa: F401  (a real PostgreSQL, started when a test asks)
from prompt_server import PromptServer
from redis_server import redis_url  # noqa: F401  (a real Redis, started when a test asks)
from scripted import ScriptedProvider
from stores import history_store, stores, user_store  # noqa: F401  (every store kind, for the contract suite)

LOCAL_MODEL = "local/smollm2-135m-instruct"
SCRIPTED_MODEL = "scripted/echo"
# Every log line and every response of our app, searched for the tests' secrets at the end of the run.
pytest_plugins = ["leak_scan"]
share_client_setup()


# What makes a test `slow` (`make test-fast` leaves them out): the real embedded model (in-process or served
# by llama.cpp's server), the browser, or a PostgreSQL server started for it. A test that needs one some
# other way (a subprocess) is marked by hand.
SLOW_FIXTURES = frozenset(
    {"local_provider", "service", "server", "llama_server", "browser", "page", "postgres_server", "postgres_url"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and "postgres" in callspec.params.values()
        if on_postgres or _uses_a_slow_fixture(item):
            item.add_marker(pytest.mark.slow)


def _uses_a_slow_fixture(item: pytest.Item) -> bool:
    """Whether the test needs one of `SLOW_FIXTURES`, unless a test module overrides it (its own `server`)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in SLOW_FIXTURES.intersection(info.names_closure):
        definitions = info.name2fixturedefs.get(name, ())
        overridden = len(definitions) > 1 and definitions[-1].baseid.endswith(".py")
        if definitions and not overridden:
            return True
    return False


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's settings: no GENAI_CHATBOT_* variables, cwd in a temporary folder."""
    for name in list(os.environ):
        if name.startswith("GENAI_CHATBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def local_provider() -> Iterator[LocalProvider]:
    """The embedded SmolLM2 model, loaded once for the whole run."""
    provider = LocalProvider(LocalModelSettings(threads=2))
    yield provider
    asyncio.run(provider.aclose())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def make_service(settings: Settings, *providers: Provider) -> ChatService:
    return ChatService(
        ModelRegistry(providers),
        SQLiteHistoryStore(settings.database_path),
        default_model=settings.default_model,
        default_system_prompt=settings.default_system_prompt,
        default_max_tokens=settings.default_max_tokens,
    )


@pytest.fixture
async def service(settings: Settings, local_provider: LocalProvider) -> AsyncIterator[ChatService]:
    chat = make_service(settings, local_provider)
    yield chat
    await chat.store.close()


class LiveServer:
    """A real uvicorn server for `app` on a free port of 127.0.0.1, run on its own thread and loop.

    Its responses are scanned for the tests' secrets (see leak_scan.py), unless `scan` is false: fake
    upstream providers echo keys on purpose.
    """

    def __init__(self, app: FastAPI, scan: bool = True) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        from leak_scan import TeeApp  # imported here: pytest_plugins must import it first

        served = TeeApp(app) if scan else app
        self._server = PromptServer(uvicorn.Config(served, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:  # poll the condition itself, bounded
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()
        self._thread.join(20)
        self._socket.close()


@pytest.fixture
def scripted_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The app over a scripted model (`SCRIPTED_MODEL`, answering "Hello, world."), served over real HTTP:
    for what the API itself does, tested in milliseconds without the embedded model."""
    settings = Settings(data_dir=tmp_path / "scripted", default_model=SCRIPTED_MODEL, local={"enabled": False})  # type: ignore[arg-type]
    chat = make_service(settings, ScriptedProvider(["Hello", ", world."]))
    with LiveServer(create_app(settings, service=chat)) as live:
        yield live
    asyncio.run(chat.aclose())


@pytest.fixture
def server(settings: Settings, local_provider: LocalProvider) -> Iterator[LiveServer]:
    """The app with the embedded model, served over real HTTP."""
    chat = make_service(settings, local_provider)
    with LiveServer(create_app(settings, service=chat)) as live:
        yield live
    asyncio.run(chat.store.close())
