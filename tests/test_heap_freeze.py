"""A served process keeps its start-up heap out of the garbage collector's full collections (api/heap.py)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from genai_chatbot.api.app import create_app
from genai_chatbot.cli.serve_app import serving_app
from genai_chatbot.config import LocalModelSettings, Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's heap as it was: a frozen test run would keep every later test's garbage."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def served(settings: Settings) -> FastAPI:
    """The app as `serve` makes it, built on another thread so that no signal handler of the test run moves."""
    made: list[FastAPI] = []
    thread = threading.Thread(target=lambda: made.append(serving_app(create_app(settings))))
    thread.start()
    thread.join()
    return made[0]


def test_the_served_app_freezes_what_its_start_up_made(tmp_path: Path, unfrozen: None) -> None:
    app = served(Settings(data_dir=tmp_path / "data", local=LocalModelSettings(enabled=False)))
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the routes, models and SDKs: tens of thousands of objects
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() <= frozen  # what requests make stays collectable (frozen objects may die)


def test_an_app_built_by_a_test_or_an_embedder_freezes_nothing(tmp_path: Path, unfrozen: None) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", local=LocalModelSettings(enabled=False)))):
        assert gc.get_freeze_count() == 0
