"""A served process tunes its garbage collector: start-up frozen, young objects collected less often
(api/garbage_collection.py)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from genai_chatbot.api.app import create_app
from genai_chatbot.api.garbage_collection import YOUNG_THRESHOLD
from genai_chatbot.cli.serve_app import serving_app
from genai_chatbot.config import LocalModelSettings, Settings


@pytest.fixture
def collector_restored() -> Iterator[tuple[int, int, int]]:
    """The test process's collector as it was: a frozen test run would keep every later test's garbage."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield thresholds
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", local=LocalModelSettings(enabled=False))


def served(settings: Settings) -> FastAPI:
    """The app as `serve` makes it, built on another thread so that no signal handler of the test run moves."""
    made: list[FastAPI] = []
    thread = threading.Thread(target=lambda: made.append(serving_app(create_app(settings))))
    thread.start()
    thread.join()
    return made[0]


def test_a_served_app_freezes_its_start_up_and_collects_young_objects_less_often(
    tmp_path: Path, collector_restored: tuple[int, int, int]
) -> None:
    app = served(settings(tmp_path))
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the routes, models and SDKs: tens of thousands of objects
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *collector_restored[1:])
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() <= frozen  # what requests make stays collectable (frozen objects may die)


def test_an_app_built_by_a_test_or_an_embedder_leaves_the_collector_alone(
    tmp_path: Path, collector_restored: tuple[int, int, int]
) -> None:
    with TestClient(create_app(settings(tmp_path))):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == collector_restored
