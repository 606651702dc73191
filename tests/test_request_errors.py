"""Every response carries a request id; an unexpected exception is a JSON 500 quoting it, and the log has it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings
from genai_chatbot.models.types import ChatChunk, ChatRequest
from scripted import ScriptedProvider

COMPLETION = {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}


class Broken(ScriptedProvider):
    """A provider with a bug: it raises something that is not a `ModelError`."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        raise RuntimeError("the provider has a bug: boom-7f3a")
        yield ChatChunk()  # pragma: no cover - makes this an async generator


def test_an_unexpected_exception_is_a_json_500_whose_request_id_is_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", default_model="scripted/echo")
    chat = make_service(settings, Broken([]))
    with (
        caplog.at_level(logging.ERROR),
        LiveServer(create_app(settings, service=chat, close_service=True)) as live,
        httpx.Client(base_url=live.url) as api,
    ):
        response = api.post("/v1/chat/completions", json=COMPLETION)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    request_id = response.headers["x-request-id"]
    assert error["type"] == "server_error" and error["code"] == "internal_error"
    assert f"request id {request_id}" in error["message"]
    assert "boom" not in response.text  # the details are for the log, not the client
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert len(logged) == 1, caplog.text
    line = logging.Formatter().format(logged[0])  # as a handler writes it: message, then the traceback
    assert "POST /v1/chat/completions" in line
    assert "Traceback" in line and "RuntimeError: the provider has a bug: boom-7f3a" in line


def test_every_response_has_a_request_id_and_a_proxy_given_one_is_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", default_model="scripted/echo")
    chat = make_service(settings, ScriptedProvider(["hi"]))
    with (
        LiveServer(create_app(settings, service=chat, close_service=True)) as live,
        httpx.Client(base_url=live.url) as api,
    ):
        responses = [
            api.get("/healthz"),
            api.get("/api/sessions/missing"),
            api.post("/api/sessions", content=b"{not json", headers={"content-type": "application/json"}),
            api.post("/v1/chat/completions", json={**COMPLETION, "stream": True}),
            api.get("/static/app.css"),
            api.get("/"),
            api.get("/", headers={"Host": "evil.example"}),  # /healthz answers any Host (load balancers)
        ]
        kept = api.get("/healthz", headers={"X-Request-ID": "lb-0042.a"})
        replaced = api.get("/healthz", headers={"X-Request-ID": "bad id; forged=" + "x" * 80})

    assert [r.status_code for r in responses] == [200, 404, 400, 200, 200, 200, 400]
    ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(ids)) == len(ids) and all(len(i) == 16 for i in ids)
    assert all(r.headers["x-content-type-options"] == "nosniff" for r in responses)
    assert kept.headers["x-request-id"] == "lb-0042.a"
    assert len(replaced.headers["x-request-id"]) == 16
