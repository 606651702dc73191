"""The genai-chatbot command, run as a user runs it: a real process, real stdin, a real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import LOCAL_MODEL


def run_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_models_lists_the_embedded_model_as_json() -> None:
    result = run_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    [model] = json.loads(result.stdout)
    assert model == {
        "id": LOCAL_MODEL,
        "provider": "local",
        "streaming": True,
        "context_window": 2048,
        "available": True,
        "unavailable_reason": None,
        "defaults": {
            "temperature": 0.0,
            "top_p": None,
            "top_k": None,
            "repeat_penalty": 1.1,
            "system_prompt": "You are a helpful assistant.",
        },
    }


def test_models_table_marks_the_default() -> None:
    result = run_cli("models")
    assert result.returncode == 0, result.stderr
    assert f"{LOCAL_MODEL} (default)" in result.stdout


def test_a_missing_config_file_is_an_error_that_names_it() -> None:
    result = run_cli("models", env={"GENAI_CHATBOT_CONFIG": "nowhere.toml"})
    assert result.returncode == 2
    assert "nowhere.toml" in result.stderr and "does not exist" in result.stderr


@pytest.mark.slow  # the embedded model, in a subprocess
def test_chat_streams_answers_and_handles_commands(tmp_path: Path) -> None:
    script = "What is the capital of France?\n/sessions\n/model nope/none\n/new\n/exit\n"
    result = run_cli("chat", "--temperature", "0", stdin=script, env={"GENAI_CHATBOT_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "What is the capital of France?" in result.stdout.split("Paris", 1)[1]  # listed by /sessions
    assert "'nope/none' does not exist" in result.stdout
    assert "New session" in result.stdout


@contextmanager
def serve(data_dir: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "genai_chatbot", "serve", "--port", str(port)],
        env={**os.environ, "GENAI_CHATBOT_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(20)


@pytest.mark.slow  # the embedded model, in a subprocess
def test_a_session_survives_a_server_restart(tmp_path: Path) -> None:
    with serve(tmp_path) as url:
        session_id = httpx.post(f"{url}/api/sessions", json={}).json()["id"]
        turn = httpx.post(
            f"{url}/api/sessions/{session_id}/messages",
            json={"content": "What is the capital of France?", "stream": False, "temperature": 0},
            timeout=60,
        ).json()
    with serve(tmp_path) as url:
        again = httpx.get(f"{url}/api/sessions/{session_id}").json()
    assert (tmp_path / "chat.sqlite3").is_file()
    assert (tmp_path / "keys.json").read_text() == "{}\n"  # created at start, where people look for it
    assert [m["content"] for m in again["messages"]] == [
        "What is the capital of France?",
        turn["message"]["content"],
    ]
    assert "Paris" in turn["message"]["content"]
