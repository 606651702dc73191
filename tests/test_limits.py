"""Each limit of `limits.*` refuses what exceeds it with a 413 or 422 that names the limit and the setting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.config import LimitSettings, Settings
from scripted import ScriptedProvider

LIMITS = LimitSettings(
    max_body_bytes=4096,
    max_content_chars=50,
    max_system_prompt_chars=40,
    max_messages=3,
    max_title_chars=10,
    max_tokens_ceiling=100,
)


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider(["ok"])


@pytest.fixture
def api(tmp_path: Path, provider: ScriptedProvider) -> Iterator[httpx.Client]:
    settings = Settings(data_dir=tmp_path / "data", default_model="scripted/echo", limits=LIMITS)
    chat = make_service(settings, provider)
    with (
        LiveServer(create_app(settings, service=chat, close_service=True)) as live,
        httpx.Client(base_url=live.url) as client,
    ):
        yield client


def refused(response: httpx.Response, status: int, setting: str, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert f"limits.{setting}" in error["message"], error
    assert f"GENAI_CHATBOT_LIMITS__{setting.upper()}" in error["message"]
    assert error["param"] == param


def chat(messages: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {"model": "scripted/echo", "messages": messages, **extra}


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def test_session_title_and_system_prompt_are_bounded(api: httpx.Client) -> None:
    refused(api.post("/api/sessions", json={"title": "x" * 11}), 422, "max_title_chars", "title")
    refused(
        api.post("/api/sessions", json={"system_prompt": "s" * 41}), 422, "max_system_prompt_chars", "system_prompt"
    )
    assert api.get("/api/sessions").json() == []  # nothing stored
    session = api.post("/api/sessions", json={"title": "x" * 10, "system_prompt": "s" * 40})
    assert session.status_code == 201
    path = f"/api/sessions/{session.json()['id']}"
    refused(api.patch(path, json={"title": "y" * 11}), 422, "max_title_chars", "title")
    refused(api.patch(path, json={"system_prompt": "t" * 41}), 422, "max_system_prompt_chars", "system_prompt")
    assert api.get(path).json()["title"] == "x" * 10


def test_message_content_and_max_tokens_are_bounded(api: httpx.Client, provider: ScriptedProvider) -> None:
    session = api.post("/api/sessions", json={}).json()["id"]
    messages = f"/api/sessions/{session}/messages"
    refused(api.post(messages, json={"content": "c" * 51}), 422, "max_content_chars", "content")
    refused(api.post(messages, json={"content": "hi", "max_tokens": 101}), 422, "max_tokens_ceiling", "max_tokens")
    retry = f"{messages}/any-answer/retry"
    refused(api.post(retry, json={"max_tokens": 101}), 422, "max_tokens_ceiling", "max_tokens")
    assert api.get(f"/api/sessions/{session}").json()["messages"] == []
    assert provider.requests == []
    accepted = api.post(messages, json={"content": "c" * 50, "max_tokens": 100, "stream": False})
    assert accepted.status_code == 200 and accepted.json()["message"]["status"] == "complete"


def test_openai_requests_are_bounded(api: httpx.Client, provider: ScriptedProvider) -> None:
    completions = "/v1/chat/completions"
    refused(api.post(completions, json=chat([user("a")] * 4)), 422, "max_messages", "messages")
    refused(
        api.post(completions, json=chat([user("a"), user("b" * 51)])), 422, "max_content_chars", "messages[1].content"
    )
    system = [{"role": "system", "content": "s" * 30}, {"role": "developer", "content": "d" * 11}, user("hi")]
    refused(api.post(completions, json=chat(system)), 422, "max_system_prompt_chars", "messages")
    refused(api.post(completions, json=chat([user("a")], max_tokens=101)), 422, "max_tokens_ceiling", "max_tokens")
    too_many = chat([user("a")], max_completion_tokens=101)
    refused(api.post(completions, json=too_many), 422, "max_tokens_ceiling", "max_completion_tokens")
    parts = chat(
        [{"role": "user", "content": [{"type": "text", "text": "p" * 30}, {"type": "text", "text": "q" * 21}]}]
    )
    refused(api.post(completions, json=parts), 422, "max_content_chars", "messages[0].content")
    assert provider.requests == []
    assert api.post(completions, json=chat([user("a")] * 3, max_tokens=100)).status_code == 200


@pytest.mark.parametrize("limit", ["9223372036854775808", "-1", "0", "1001", "ten"])
def test_limit_query_parameters_are_bounded_to_1_to_1000(api: httpx.Client, limit: str) -> None:
    response = api.get("/api/sessions", params={"limit": limit})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "limit"


def test_limit_query_parameter_accepts_1_to_1000(api: httpx.Client) -> None:
    for title in ("a", "b"):
        api.post("/api/sessions", json={"title": title}).raise_for_status()
    assert len(api.get("/api/sessions", params={"limit": 1}).json()) == 1
    assert len(api.get("/api/sessions", params={"limit": 1000}).json()) == 2


def test_a_body_over_the_limit_is_a_413_whether_its_length_is_declared_or_not(api: httpx.Client) -> None:
    big = b'{"title": "' + b"x" * 5000 + b'"}'
    declared = api.post("/api/sessions", content=big, headers={"content-type": "application/json"})
    refused(declared, 413, "max_body_bytes", None)
    assert declared.json()["error"]["code"] == "request_too_large"

    def pieces() -> Iterator[bytes]:  # no Content-Length: sent chunked, counted as it arrives
        yield big[:3000]
        yield big[3000:]

    chunked = api.post("/api/sessions", content=pieces(), headers={"content-type": "application/json"})
    refused(chunked, 413, "max_body_bytes", None)
    completion = api.post("/v1/chat/completions", content=pieces(), headers={"content-type": "application/json"})
    refused(completion, 413, "max_body_bytes", None)
    assert api.get("/api/sessions").json() == []

    def small() -> Iterator[bytes]:
        yield b'{"title": '
        yield b'"fits"}'

    assert api.post("/api/sessions", content=small(), headers={"content-type": "application/json"}).status_code == 201
