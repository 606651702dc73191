"""Model calls are traced with the GenAI semantic conventions and exported to an OTLP/HTTP collector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from fake_openai import FakeOpenAI, Recorded, Reply, default_reply
from fake_otlp import Collector, attributes
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings
from genai_chatbot.governance.tracing import build_tracing

SECRET_PROMPT = "my-private-question-7f3a"


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def settings_for(tmp_path: Path, upstream: FakeOpenAI, otlp_endpoint: str | None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        local={"enabled": False},
        default_model="fake/gpt-4o",
        openai_compatible=[{"name": "fake", "base_url": f"{upstream.url}/v1", "models": ["gpt-4o"]}],
        otlp_endpoint=otlp_endpoint,
    )


def test_a_chat_request_is_exported_as_a_genai_span(tmp_path: Path, upstream: FakeOpenAI) -> None:
    failures = iter([Reply(status=503, json={"error": {"message": "overloaded"}})])

    def answer(request: Recorded) -> Reply:
        failure = next(failures, None) if request.path.endswith("/chat/completions") else None
        return failure or default_reply(request)

    upstream.answer = answer
    body = {
        "model": "fake/gpt-4o",
        "messages": [{"role": "user", "content": SECRET_PROMPT}],
        "max_tokens": 50,
        "temperature": 0.25,
    }
    with Collector() as collector:
        settings = settings_for(tmp_path, upstream, collector.url)
        with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
            assert client.post("/v1/chat/completions", json=body).status_code == 502
            streamed = client.post("/v1/chat/completions", json={**body, "stream": True})
            assert "Hello" in streamed.text
        # The server's shutdown exported what was still buffered.
        assert collector.received.wait(10)
    assert set(collector.paths) == {"/v1/traces"}
    (resource, failed), (_, ok) = collector.spans
    assert resource["service.name"] == "genai-chatbot"
    assert ok.name == "chat gpt-4o" and ok.kind == ok.SPAN_KIND_CLIENT
    assert attributes(ok) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "fake",
        "gen_ai.system": "fake",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.temperature": 0.25,
        "gen_ai.response.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 3,
        "genai_chatbot.model_id": "fake/gpt-4o",
        "genai_chatbot.surface": "v1",
        "genai_chatbot.status": "complete",
        "genai_chatbot.time_to_first_token": attributes(ok)["genai_chatbot.time_to_first_token"],
    }
    assert (
        0
        < attributes(ok)["genai_chatbot.time_to_first_token"]
        <= (ok.end_time_unix_nano - ok.start_time_unix_nano) / 1e9
    )
    assert attributes(failed)["error.type"] == "provider_error"
    assert failed.status.code == failed.status.STATUS_CODE_ERROR
    everything = str([(attributes(s), s.name, list(s.events)) for _, s in collector.spans])
    assert SECRET_PROMPT not in everything and "Hello" not in everything  # no prompt or answer text


def test_tracing_is_off_without_an_endpoint_and_on_with_the_standard_variable(
    tmp_path: Path, upstream: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert build_tracing(settings_for(tmp_path, upstream, None)) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    tracing = build_tracing(settings_for(tmp_path, upstream, None))
    assert tracing is not None
    tracing.shutdown()
