"""`genai-chatbot models --refresh`: a key added to the secret shows its models without waiting for the TTL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import LiveServer
from fake_openai import FakeOpenAI
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings


def models_on(server: str, *flags: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "genai_chatbot", "models", "--json", "--server", server, *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert result.returncode == 0, result.stderr
    return [m["id"] for m in json.loads(result.stdout) if m["available"]]


def test_refresh_makes_a_running_server_reread_the_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text("{}")
    settings = Settings(data_dir=tmp_path, keys_ttl_seconds=3600)
    with FakeOpenAI() as upstream, LiveServer(create_app(settings)) as server:
        assert "openai/gpt-4o" not in models_on(server.url)
        keys.write_text(json.dumps({"OPENAI_API_KEY": "sk-test-refresh", "OPENAI_BASE_URL": f"{upstream.url}/v1"}))
        assert "openai/gpt-4o" not in models_on(server.url)  # cached for an hour
        assert "openai/gpt-4o" in models_on(server.url, "--refresh")
        assert upstream.last("/models").headers["authorization"] == "Bearer sk-test-refresh"
