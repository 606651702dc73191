"""`OPENAI_BASE_URL`, `COHERE_BASE_URL` and `AI21_BASE_URL` in the environment, the names the SDKs read.

They count wherever the keys secret's values do (the providers and `doctor`), and the keys secret wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from genai_chatbot.config import Settings
from genai_chatbot.doctor import run_checks
from genai_chatbot.models.registry import build_registry
from genai_chatbot.secrets import EnvironmentKeySource

KEY = "sk-test-env-base-url-0123"
NOTHING_LISTENS = "http://127.0.0.1:9/v1"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "COHERE_BASE_URL", "AI21_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return Settings(data_dir=tmp_path, local={"enabled": False})  # type: ignore[arg-type]


async def openai_models(settings: Settings) -> list[str]:
    registry = build_registry(settings)
    try:
        return [m.id for m in await registry.list_models() if m.provider == "openai" and m.available]
    finally:
        await registry.aclose()


async def test_the_sdk_base_url_variables_are_read_from_the_environment() -> None:
    environ = {
        "OPENAI_BASE_URL": "http://openai.internal/v1",
        "COHERE_BASE_URL": "http://cohere.internal",
        "AI21_BASE_URL": "http://ai21.internal/studio/v1",
        "SOME_OTHER_URL": "http://elsewhere",
    }
    read = await EnvironmentKeySource(environ).read()
    assert read == {k: v for k, v in environ.items() if k != "SOME_OTHER_URL"}


async def test_openai_base_url_from_the_environment_is_used(
    settings: Settings, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.keys_path.write_text(json.dumps({"OPENAI_API_KEY": KEY}))
    monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
    assert "openai/gpt-4o" in await openai_models(settings)
    assert fake.last("/models").headers["authorization"] == f"Bearer {KEY}"


async def test_doctor_checks_the_base_url_from_the_environment(
    settings: Settings, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.keys_path.write_text(json.dumps({"OPENAI_API_KEY": KEY}))
    monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
    [row] = [r for r in await run_checks(settings) if r.component == "openai"]
    assert row.status == "ok", row
    assert fake.requests, "doctor asked another host than OPENAI_BASE_URL"


async def test_the_keys_secret_wins_over_the_environment(
    settings: Settings, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.keys_path.write_text(json.dumps({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{fake.url}/v1"}))
    monkeypatch.setenv("OPENAI_BASE_URL", NOTHING_LISTENS)
    assert "openai/gpt-4o" in await openai_models(settings)
    assert fake.last("/models").headers["authorization"] == f"Bearer {KEY}"
