"""Embedding models are not offered for chat: the terminal's `/models` and `genai-chatbot models` leave them
out (the page's picker too, see test_embeddings_api.py), while `GET /v1/models` lists them as OpenAI does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fake_openai import FakeOpenAI
from genai_chatbot.chat.service import GenerationOptions, build_chat_service
from genai_chatbot.cli import app
from genai_chatbot.cli.chat import TerminalChat
from genai_chatbot.config import Settings

CHAT, EMBEDDER = "fake/gpt-4o", "fake/text-embedding-3-small"


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def endpoint(upstream: FakeOpenAI) -> dict[str, object]:
    return {
        "name": "fake",
        "base_url": f"{upstream.url}/v1",
        "models": ["gpt-4o"],
        "embedding_models": ["text-embedding-3-small"],
    }


async def test_the_terminals_models_command_offers_chat_models_only(
    tmp_path: Path, upstream: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        local={"enabled": False},  # type: ignore[arg-type]
        default_model=CHAT,
        openai_compatible=[endpoint(upstream)],  # type: ignore[list-item]
    )
    service = build_chat_service(settings)
    try:
        assert {m.id for m in await service.list_models()} >= {CHAT, EMBEDDER}  # the service still has both
        assert await TerminalChat(service, CHAT, GenerationOptions(), None).command("/models")
    finally:
        await service.aclose()
    listed = capsys.readouterr().out
    assert CHAT in listed and EMBEDDER not in listed


def test_the_models_command_lists_chat_models_and_embedding_models_when_asked(
    tmp_path: Path, upstream: FakeOpenAI
) -> None:
    config = tmp_path / "genai-chatbot.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\ndefault_model = "{CHAT}"\n[local]\nenabled = false\n'
        f"[[openai_compatible]]\n{_toml(endpoint(upstream))}"
    )
    runner = CliRunner()
    chat = runner.invoke(app, ["models", "--json", "--config", str(config)])
    embeddings = runner.invoke(app, ["models", "--json", "--embeddings", "--config", str(config)])
    assert chat.exit_code == 0 and embeddings.exit_code == 0, chat.output + embeddings.output
    assert [row["id"] for row in json.loads(chat.stdout)] == [CHAT]
    assert [row["id"] for row in json.loads(embeddings.stdout)] == [EMBEDDER]


def _toml(table: dict[str, object]) -> str:
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())
