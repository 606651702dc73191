"""The terminal chat's commands and answers over a scripted model, in-process and in milliseconds.

tests/test_cli.py runs the same through a real process with the embedded model (marked slow); here the
conversation logic is tested without either, including what is printed when the service refuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import SCRIPTED_MODEL, make_service
from genai_chatbot.chat.service import ChatService, GenerationOptions
from genai_chatbot.cli.chat import TerminalChat
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import ModelNotFoundError
from scripted import ScriptedProvider


@pytest.fixture
async def terminal(tmp_path: Path) -> AsyncIterator[TerminalChat]:
    settings = Settings(data_dir=tmp_path, default_model=SCRIPTED_MODEL, local={"enabled": False})  # type: ignore[arg-type]
    service: ChatService = make_service(settings, ScriptedProvider(["Paris", " it is."]))
    yield TerminalChat(service, SCRIPTED_MODEL, GenerationOptions(), None)
    await service.aclose()


async def test_an_answer_streams_and_the_session_is_listed(
    terminal: TerminalChat, capsys: pytest.CaptureFixture[str]
) -> None:
    await terminal.send("What is the capital of France?")
    assert await terminal.command("/sessions")
    out = capsys.readouterr().out
    assert out.startswith("Paris it is.\n")
    assert f"{SCRIPTED_MODEL}  What is the capital of France?" in out


async def test_commands_switch_model_start_anew_and_leave(
    terminal: TerminalChat, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelNotFoundError, match="'nope/none' does not exist"):
        await terminal.command("/model nope/none")
    await terminal.send("hi")
    assert terminal.session_id is not None
    assert await terminal.command("/new") and terminal.session_id is None
    assert await terminal.command("/model scripted/echo")
    assert not await terminal.command("/exit")
    out = capsys.readouterr().out
    assert "New session: your next message starts it." in out and "Model: scripted/echo" in out


async def test_a_session_deleted_elsewhere_is_said_in_terminal_words(
    terminal: TerminalChat, capsys: pytest.CaptureFixture[str]
) -> None:
    await terminal.send("hi")
    assert terminal.session_id is not None
    await terminal.service.delete_session("default", terminal.session_id)
    await terminal.command(f"/open {terminal.session_id}")
    out = capsys.readouterr().out
    assert "No session of yours has an id starting with" in out
    assert "/api/" not in out and "GET " not in out
