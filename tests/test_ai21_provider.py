"""The AI21 provider through the real `ai21` SDK, against a local server speaking AI21's chat API."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response

from fake_http import FakeAPI, KeysFile, Received, error, serving, sse
from genai_chatbot.models.errors import InvalidRequestError, ProviderUnavailableError, RateLimitedError
from genai_chatbot.models.providers.ai21 import AI21Provider
from genai_chatbot.models.types import ChatRequest, Message

# The ai21 SDK itself hands httpx its JSON body as `data=bytes`, which httpx deprecates; nothing we can change.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")

KEY = "ai21-test-key-0123456789"
PATH = "/studio/v1/chat/completions"


def request(**params: Any) -> ChatRequest:
    return ChatRequest(
        model="jamba-mini",
        messages=(Message("user", "Capital of France?"), Message("assistant", "Paris."), Message("user", "And Italy?")),
        system="Answer in one word.",
        **params,
    )


def chunk(content: str | None = None, finish: str | None = None, usage: dict[str, int] | None = None) -> Any:
    delta = {"content": content} if content is not None else {"role": "assistant"}
    body: dict[str, Any] = {"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return body


def stream_reply(_: Received) -> Response:
    usage = {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}
    return sse([chunk(), chunk("Ro"), chunk("me"), chunk("", finish="length", usage=usage), "[DONE]"])


def chat_reply(_: Received) -> Response:
    return JSONResponse(
        {
            "id": "r1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Rome."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
        }
    )


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    with serving() as api:
        yield api


@pytest.fixture
def keys_file(tmp_path: Path) -> KeysFile:
    return KeysFile(tmp_path / "keys.json", AI21_API_KEY=KEY, AI21_BASE_URL="http://127.0.0.1:9/unused")


@pytest.fixture
async def provider(keys_file: KeysFile, fake_api: FakeAPI) -> Any:
    # AI21_BASE_URL in the keys is how deployments point elsewhere; tests use it too.
    keys_file.write(AI21_API_KEY=KEY, AI21_BASE_URL=f"{fake_api.url}/studio/v1")
    ai21 = AI21Provider(keys_file.keys, timeout_seconds=10)
    yield ai21
    await ai21.aclose()


async def test_stream_sends_the_request_as_ai21_expects_and_yields_text_usage_and_finish(
    provider: AI21Provider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", PATH, stream_reply)
    chunks = [c async for c in provider.stream(request(temperature=0.3, top_p=0.8, max_tokens=2, stop=("\n",)))]

    assert [c.text for c in chunks if c.text] == ["Ro", "me"]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (20, 2)
    [sent] = fake_api.received
    assert sent.path == PATH
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "jamba-mini"
    assert sent.body["stream"] is True
    assert [(m["role"], m["content"]) for m in sent.body["messages"]] == [
        ("system", "Answer in one word."),
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "And Italy?"),
    ]
    assert (sent.body["temperature"], sent.body["top_p"], sent.body["max_tokens"]) == (0.3, 0.8, 2)
    assert sent.body["stop"] == ["\n"]


async def test_complete_uses_the_non_streaming_call(provider: AI21Provider, fake_api: FakeAPI) -> None:
    fake_api.on("POST", PATH, chat_reply)
    result = await provider.complete(request())
    assert result.text == "Rome."
    assert result.finish_reason == "stop"
    assert result.usage is not None and result.usage.total_tokens == 22
    body = fake_api.received[-1].body
    assert body["stream"] is False
    assert not {"temperature", "top_p", "max_tokens", "stop"} & set(body)


async def test_rate_limit_becomes_rate_limited_error_with_retry_after(
    provider: AI21Provider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", PATH, lambda _: error(429, "too many requests", {"Retry-After": "3"}))
    with pytest.raises(RateLimitedError) as caught:
        [c async for c in provider.stream(request())]
    assert caught.value.retry_after == 3
    assert len(fake_api.received) == 1


async def test_rejected_key_is_unavailable_naming_the_key_but_not_its_value(
    provider: AI21Provider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", PATH, lambda _: error(401, f"bad key {KEY}"))
    with pytest.raises(ProviderUnavailableError) as caught:
        await provider.complete(request())
    assert "AI21_API_KEY" in caught.value.message
    assert KEY not in caught.value.message


async def test_streamed_bad_request_becomes_invalid_request_error_with_the_reason(
    provider: AI21Provider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", PATH, lambda _: JSONResponse({"detail": "top_p must be at most 1"}, status_code=422))
    with pytest.raises(InvalidRequestError, match="top_p must be at most 1"):
        [c async for c in provider.stream(request(top_p=0.5))]


async def test_models_appear_when_the_key_is_added_and_disappear_when_removed(
    keys_file: KeysFile, provider: AI21Provider, fake_api: FakeAPI
) -> None:
    listed = await provider.list_models()
    assert {m.id for m in listed} == {"ai21/jamba-large", "ai21/jamba-mini"}
    assert all(m.available and m.context_window == 256_000 for m in listed)
    keys_file.write()
    assert await provider.list_models() == []
    with pytest.raises(ProviderUnavailableError, match="AI21_API_KEY"):
        await provider.complete(request())
    keys_file.write(AI21_API_KEY=KEY, AI21_BASE_URL=f"{fake_api.url}/studio/v1")
    assert len(await provider.list_models()) == 2


async def test_a_key_the_api_refuses_lists_the_models_unavailable_naming_the_key(
    keys_file: KeysFile, provider: AI21Provider, fake_api: FakeAPI
) -> None:
    fake_api.on("GET", "/studio/v1/library/files", lambda _: error(401, f"invalid api key {KEY}"))
    listed = await provider.list_models()
    assert {m.name for m in listed} == {"jamba-large", "jamba-mini"}, "the names stay listed"
    assert not any(m.available for m in listed)
    reason = listed[0].unavailable_reason or ""
    assert "the key AI21_API_KEY was refused (HTTP 401)" in reason and KEY not in reason
    [check] = fake_api.received
    assert check.headers["authorization"] == f"Bearer {KEY}"
    await provider.list_models()
    assert len(fake_api.received) == 1, "the answer is kept until refresh"
    fake_api.on("GET", "/studio/v1/library/files", lambda _: JSONResponse([]))
    await provider.refresh()
    assert all(m.available for m in await provider.list_models())


async def test_an_unreachable_api_lists_the_models_unavailable_as_unreachable(keys_file: KeysFile) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    keys_file.write(AI21_API_KEY=KEY, AI21_BASE_URL=f"http://127.0.0.1:{port}/studio/v1")
    provider = AI21Provider(keys_file.keys, timeout_seconds=5)
    try:
        listed = await provider.list_models()
    finally:
        await provider.aclose()
    assert len(listed) == 2 and not any(m.available for m in listed)
    reason = listed[0].unavailable_reason or ""
    assert f"Cannot reach AI21: endpoint http://127.0.0.1:{port}/studio/v1 did not answer" in reason
    assert "check AI21_BASE_URL or the network" in reason
