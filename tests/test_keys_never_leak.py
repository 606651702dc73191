"""Key values never appear in logs, API responses, the model list, errors or command output.

An upstream that echoes the key it was sent (as real providers do in their 401 messages) is the hardest
case: every surface is exercised against it with debug logging on, then searched for the key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aws_local import free_port
from fake_openai import FakeOpenAI, Recorded, Reply, default_reply
from leak_scan import scan_text

# A `serve` subprocess and four CLI subprocesses (about 3 s of CPU); the leak scan (leak_scan.py) still
# searches every response and log line of the fast suite for its secrets.
pytestmark = pytest.mark.slow

CANARY = "sk-canary-0123456789abcdef"


def echo_the_key(request: Recorded) -> Reply:
    if request.path.endswith("/models"):
        return default_reply(request)
    sent = request.headers.get("authorization", "")
    status = 500 if request.body.get("stream") else 401  # a 500's message is passed on to the user, scrubbed
    return Reply(status=status, json={"error": {"message": f"Incorrect API key provided: {sent}"}})


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with FakeOpenAI() as upstream:
        upstream.answer = echo_the_key
        (tmp_path / "keys.json").write_text(f'{{"UPSTREAM_KEY": "{CANARY}"}}')
        path = tmp_path / "genai-chatbot.toml"
        path.write_text(
            f'data_dir = "{tmp_path}"\ndefault_model = "upstream/gpt-4o"\nlog_level = "debug"\n'
            "[local]\nenabled = false\n"
            f'[[openai_compatible]]\nname = "upstream"\nbase_url = "{upstream.url}/v1"\n'
            'api_key_name = "UPSTREAM_KEY"\nmodels = ["gpt-4o"]\n'
        )
        yield path


def cli(config: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "genai_chatbot", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    scan_text(result.stdout + result.stderr, f"output of genai-chatbot {' '.join(args)}")
    return result.stdout + result.stderr


def test_no_surface_shows_a_key(config: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "genai_chatbot", "serve", "--config", str(config), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    seen: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            deadline = time.monotonic() + 30
            while True:
                try:
                    api.get("/healthz").raise_for_status()
                    break
                except httpx.TransportError:
                    assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.05)
            body = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
            whole = api.post("/v1/chat/completions", json=body)
            assert whole.status_code == 503 and "UPSTREAM_KEY was refused" in whole.text
            streamed = api.post("/v1/chat/completions", json={**body, "stream": True})
            session = api.post("/api/sessions", json={}).json()["id"]
            turn = api.post(f"/api/sessions/{session}/messages", json={"content": "hi"})
            seen += [whole.text, streamed.text, turn.text, api.get(f"/api/sessions/{session}").text]
            seen += [api.get("/v1/models").text, api.get("/api/models").text, api.post("/api/models/refresh").text]
            seen.append(api.get("/").text)
    finally:
        server.terminate()
        server.wait(20)
    seen += [cli(config, "models"), cli(config, "models", "--json"), cli(config, "doctor")]
    logged = log.read_text()
    scan_text(logged, "the server's log")
    assert "upstream" in logged.lower()  # the log did record the failing calls
    for text in [*seen, logged]:
        assert CANARY not in text
