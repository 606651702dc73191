"""The LangChain provider with the real `langchain_openai.ChatOpenAI`, against a local OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response

from fake_http import FakeAPI, KeysFile, Received, error, serving, sse
from genai_chatbot.config import LangChainModel
from genai_chatbot.models.errors import ProviderUnavailableError, RateLimitedError
from genai_chatbot.models.providers.langchain import LangChainProvider
from genai_chatbot.models.types import ChatRequest, Message

KEY = "sk-test-0123456789abcdef"
PATH = "/v1/chat/completions"


def entry(url: str, **overrides: Any) -> LangChainModel:
    settings: dict[str, Any] = {
        "name": "gpt-local",
        "class_path": "langchain_openai.ChatOpenAI",
        # max_retries=0: a 429 must reach us, not be retried by the openai SDK underneath.
        "kwargs": {"model": "gpt-4o-mini", "base_url": f"{url}/v1", "stream_usage": True, "max_retries": 0},
        "keys": {"api_key": "OPENAI_API_KEY"},
        "display_name": "GPT via LangChain",
        "context_window": 16000,
    }
    return LangChainModel(**{**settings, **overrides})


def request(model: str = "gpt-local", **params: Any) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=(Message("user", "Capital of France?"), Message("assistant", "Paris."), Message("user", "And Italy?")),
        system="Answer in one word.",
        **params,
    )


def openai_stream(received: Received) -> Response:
    def piece(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": received.body["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    events: list[dict[str, Any] | str] = [
        piece({"role": "assistant", "content": ""}),
        piece({"content": "Ro"}),
        piece({"content": "me"}),
        piece({}, finish="length"),
    ]
    if received.body.get("stream_options", {}).get("include_usage"):
        usage = {"prompt_tokens": 25, "completion_tokens": 2, "total_tokens": 27}
        events.append({**piece({}), "choices": [], "usage": usage})
    return sse([*events, "[DONE]"])


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    with serving() as api:
        yield api


@pytest.fixture
def keys_file(tmp_path: Path) -> KeysFile:
    return KeysFile(tmp_path / "keys.json", OPENAI_API_KEY=KEY)


@pytest.fixture
def provider(keys_file: KeysFile, fake_api: FakeAPI) -> LangChainProvider:
    return LangChainProvider([entry(fake_api.url)], keys_file.keys, timeout_seconds=10)


async def test_streams_through_the_configured_class_with_the_key_from_the_secret(
    provider: LangChainProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", PATH, openai_stream)
    chunks = [c async for c in provider.stream(request(temperature=0.1, top_p=0.7, max_tokens=2, stop=("\n",)))]

    assert [c.text for c in chunks if c.text] == ["Ro", "me"]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (25, 2)
    [sent] = fake_api.received
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["stream"] is True
    assert sent.body["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Italy?"},
    ]
    assert (sent.body["temperature"], sent.body["top_p"], sent.body["max_completion_tokens"]) == (0.1, 0.7, 2)
    assert sent.body["stop"] == ["\n"]


async def test_model_is_listed_with_its_settings(provider: LangChainProvider) -> None:
    [model] = await provider.list_models()
    assert model.id == "langchain/gpt-local"
    assert model.available, model.unavailable_reason
    assert (model.display_name, model.context_window) == ("GPT via LangChain", 16000)


async def test_model_object_is_reused_until_its_key_changes(
    keys_file: KeysFile, provider: LangChainProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", PATH, openai_stream)
    [c async for c in provider.stream(request())]
    first = provider._built.current("gpt-local")
    [c async for c in provider.stream(request())]
    assert provider._built.current("gpt-local") is first
    keys_file.write(OPENAI_API_KEY="sk-rotated-9876543210")
    [c async for c in provider.stream(request())]
    assert provider._built.current("gpt-local") is not first
    assert [r.headers["authorization"] for r in fake_api.received] == [
        f"Bearer {KEY}",
        f"Bearer {KEY}",
        "Bearer sk-rotated-9876543210",
    ]


async def test_missing_key_lists_the_model_unavailable_naming_the_key(
    keys_file: KeysFile, provider: LangChainProvider
) -> None:
    keys_file.write()
    [model] = await provider.list_models()
    assert not model.available
    assert model.unavailable_reason is not None and "OPENAI_API_KEY" in model.unavailable_reason
    with pytest.raises(ProviderUnavailableError, match="OPENAI_API_KEY"):
        [c async for c in provider.stream(request())]


async def test_class_that_cannot_be_imported_is_unavailable_with_the_pip_command(
    keys_file: KeysFile, fake_api: FakeAPI
) -> None:
    missing = entry(fake_api.url, name="mistral", class_path="langchain_nosuchvendor.ChatNoSuch")
    typo = entry(fake_api.url, name="typo", class_path="langchain_openai.ChatOpenAl")
    provider = LangChainProvider([missing, typo], keys_file.keys)
    by_name = {m.name: m for m in await provider.list_models()}
    assert not by_name["mistral"].available
    assert "pip install langchain-nosuchvendor" in (by_name["mistral"].unavailable_reason or "")
    assert "has no class ChatOpenAl" in (by_name["typo"].unavailable_reason or "")
    with pytest.raises(ProviderUnavailableError, match="pip install langchain-nosuchvendor"):
        [c async for c in provider.stream(request(model="mistral"))]


async def test_rate_limit_becomes_rate_limited_error_with_retry_after(
    provider: LangChainProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", PATH, lambda _: error(429, "slow down", {"Retry-After": "4"}))
    with pytest.raises(RateLimitedError) as caught:
        [c async for c in provider.stream(request())]
    assert caught.value.retry_after == 4
    assert len(fake_api.received) == 1


async def test_rejected_key_is_unavailable_naming_the_key_but_not_its_value(
    provider: LangChainProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", PATH, lambda _: JSONResponse({"error": {"message": f"bad key {KEY}"}}, status_code=401))
    with pytest.raises(ProviderUnavailableError) as caught:
        [c async for c in provider.stream(request())]
    assert "OPENAI_API_KEY" in caught.value.message
    assert KEY not in caught.value.message


async def test_invalid_kwargs_are_reported_without_the_key(keys_file: KeysFile, fake_api: FakeAPI) -> None:
    broken = entry(fake_api.url, kwargs={"model": "m", "base_url": fake_api.url, "temperature": "very hot"})
    provider = LangChainProvider([broken], keys_file.keys)
    with pytest.raises(ProviderUnavailableError, match="temperature") as caught:
        [c async for c in provider.stream(request())]
    assert KEY not in caught.value.message


async def test_registry_serves_cohere_ai21_and_langchain_models_from_settings_and_keys(
    tmp_path: Path, fake_api: FakeAPI
) -> None:
    from genai_chatbot.config import LocalModelSettings, Settings
    from genai_chatbot.models.registry import build_registry

    vendors = {
        "COHERE_API_KEY": "c" * 12,
        "COHERE_BASE_URL": fake_api.url,
        "AI21_API_KEY": "a" * 12,
        "AI21_BASE_URL": f"{fake_api.url}/studio/v1",
    }
    keys = KeysFile(tmp_path / "registry-keys.json", **vendors)
    model = entry(fake_api.url, keys={"api_key": "VENDOR_API_KEY"})
    registry = build_registry(Settings(local=LocalModelSettings(enabled=False), langchain=[model]), keys.keys)
    providers = registry.providers
    listed = {
        name: [m.id for m in await providers[name].list_models() if m.available]
        for name in ("cohere", "ai21", "langchain")
    }
    assert "cohere/command-a-03-2025" in listed["cohere"]
    assert listed["ai21"] == ["ai21/jamba-large", "ai21/jamba-mini"]
    assert listed["langchain"] == []  # VENDOR_API_KEY is not in the keys yet
    keys.write(**vendors, VENDOR_API_KEY="v" * 12)
    assert [m.id for m in await providers["langchain"].list_models() if m.available] == ["langchain/gpt-local"]
    await registry.aclose()
