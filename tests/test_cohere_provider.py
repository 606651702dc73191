"""The Cohere provider through the real `cohere` SDK, against a local server speaking Cohere's v2 API."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response

from fake_http import FakeAPI, KeysFile, Received, error, serving, sse
from genai_chatbot.models.errors import (
    InvalidRequestError,
    ProviderUnavailableError,
    RateLimitedError,
)
from genai_chatbot.models.features import check_features
from genai_chatbot.models.providers.cohere import CURATED_MODELS, CohereProvider
from genai_chatbot.models.providers.cohere_embeddings import EMBEDDING_MODELS
from genai_chatbot.models.types import ChatRequest, Diagnosis, EmbeddingRequest, Message, ModelInfo, ResponseFormat

KEY = "co-test-key-0123456789"
MODEL = "command-r-08-2024"


def request(**params: Any) -> ChatRequest:
    return ChatRequest(
        model=MODEL,
        messages=(Message("user", "Capital of France?"), Message("assistant", "Paris."), Message("user", "And Italy?")),
        system="Answer in one word.",
        **params,
    )


def chat_models(models: list[ModelInfo]) -> list[ModelInfo]:
    """The chat models of a listing (Cohere's embedding models follow them)."""
    return [m for m in models if "embeddings" not in m.features]


def stream_events(finish: str = "MAX_TOKENS") -> Response:
    return sse(
        [
            {"type": "message-start", "id": "m1", "delta": {"message": {"role": "assistant", "content": []}}},
            {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Ro"}}}},
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "me"}}}},
            {"type": "content-end", "index": 0},
            {
                "type": "message-end",
                "id": "m1",
                "delta": {
                    "finish_reason": finish,
                    "usage": {
                        "billed_units": {"input_tokens": 12, "output_tokens": 2},
                        "tokens": {"input_tokens": 95, "output_tokens": 2},
                    },
                },
            },
        ],
        named=True,
    )


def chat_reply(_: Received) -> Response:
    return JSONResponse(
        {
            "id": "r1",
            "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Rome."}]},
            "usage": {"billed_units": {"input_tokens": 12, "output_tokens": 2}},
        }
    )


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    with serving() as api:
        yield api


@pytest.fixture
def keys_file(tmp_path: Path) -> KeysFile:
    return KeysFile(tmp_path / "keys.json", COHERE_API_KEY=KEY)


@pytest.fixture
async def provider(keys_file: KeysFile, fake_api: FakeAPI) -> Any:
    cohere = CohereProvider(keys_file.keys, timeout_seconds=10, base_url=fake_api.url)
    yield cohere
    await cohere.aclose()


async def test_stream_sends_the_request_as_cohere_expects_and_yields_text_usage_and_finish(
    provider: CohereProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", "/v2/chat", lambda _: stream_events())
    chunks = [c async for c in provider.stream(request(temperature=0.2, top_p=0.9, max_tokens=2, stop=("\n",)))]

    assert [c.text for c in chunks if c.text] == ["Ro", "me"]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 2)  # billed units
    [sent] = [r for r in fake_api.received if r.path == "/v2/chat"]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == MODEL
    assert sent.body["stream"] is True
    assert sent.body["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Italy?"},
    ]
    assert (sent.body["temperature"], sent.body["p"], sent.body["max_tokens"]) == (0.2, 0.9, 2)
    assert sent.body["stop_sequences"] == ["\n"]


async def test_unset_parameters_are_left_to_cohere(provider: CohereProvider, fake_api: FakeAPI) -> None:
    fake_api.on("POST", "/v2/chat", lambda _: stream_events("COMPLETE"))
    chunks = [c async for c in provider.stream(request())]
    assert chunks[-1].finish_reason == "stop"
    body = fake_api.received[-1].body
    assert not {"temperature", "p", "max_tokens", "stop_sequences"} & set(body)


async def test_complete_uses_the_non_streaming_chat_call(provider: CohereProvider, fake_api: FakeAPI) -> None:
    fake_api.on("POST", "/v2/chat", chat_reply)
    result = await provider.complete(request(temperature=0))
    assert result.text == "Rome."
    assert result.finish_reason == "stop"
    assert result.usage is not None and result.usage.total_tokens == 14
    assert fake_api.received[-1].body["stream"] is False


async def test_rate_limit_becomes_rate_limited_error_with_retry_after(
    provider: CohereProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", "/v2/chat", lambda _: error(429, "trial key limit", {"Retry-After": "7"}))
    with pytest.raises(RateLimitedError) as caught:
        [c async for c in provider.stream(request())]
    assert caught.value.retry_after == 7
    assert "trial key limit" in caught.value.message
    assert len([r for r in fake_api.received if r.path == "/v2/chat"]) == 1  # no hidden SDK retries


async def test_rejected_key_is_unavailable_naming_the_key_but_not_its_value(
    provider: CohereProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", "/v2/chat", lambda _: error(401, f"invalid api token {KEY}"))
    with pytest.raises(ProviderUnavailableError) as caught:
        [c async for c in provider.stream(request())]
    assert "COHERE_API_KEY" in caught.value.message
    assert KEY not in caught.value.message


async def test_bad_request_becomes_invalid_request_error(provider: CohereProvider, fake_api: FakeAPI) -> None:
    fake_api.on("POST", "/v2/chat", lambda _: error(400, "max_tokens must be positive"))
    with pytest.raises(InvalidRequestError, match="max_tokens must be positive"):
        await provider.complete(request())


async def test_models_appear_when_the_key_is_added_and_disappear_when_removed(
    keys_file: KeysFile, provider: CohereProvider
) -> None:
    assert [m.name for m in chat_models(await provider.list_models())] == [m.name for m in CURATED_MODELS]
    keys_file.write()
    assert await provider.list_models() == []
    with pytest.raises(ProviderUnavailableError, match="COHERE_API_KEY"):
        [c async for c in provider.stream(request())]
    keys_file.write(COHERE_API_KEY=KEY)
    assert all(m.available for m in await provider.list_models())


async def test_chat_models_the_api_lists_replace_the_curated_list(provider: CohereProvider, fake_api: FakeAPI) -> None:
    models = [
        {"name": "command-a-03-2025", "endpoints": ["chat"], "context_length": 256000},
        {"name": "c4ai-aya-expanse-32b", "endpoints": ["chat"], "context_length": 128000},
        {"name": "command-light", "endpoints": ["chat"], "context_length": 4096, "is_deprecated": True},
    ]
    fake_api.on("GET", "/v1/models", lambda _: JSONResponse({"models": models}))
    listed = {m.name: m for m in chat_models(await provider.list_models())}
    assert set(listed) == {"command-a-03-2025", "c4ai-aya-expanse-32b"}
    assert listed["c4ai-aya-expanse-32b"].context_window == 128000
    assert listed["command-a-03-2025"].display_name == "Command A"
    [asked] = [r for r in fake_api.received if r.path == "/v1/models"]
    assert asked.query["endpoint"] == "chat"
    await provider.list_models()
    assert len([r for r in fake_api.received if r.path == "/v1/models"]) == 1  # cached until refresh
    await provider.refresh()
    await provider.list_models()
    assert len([r for r in fake_api.received if r.path == "/v1/models"]) == 2


async def test_a_changed_key_is_sent_from_the_next_request_on(
    keys_file: KeysFile, provider: CohereProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", "/v2/chat", chat_reply)
    await provider.complete(request())
    keys_file.write(COHERE_API_KEY="co-rotated-key-987654")
    await provider.complete(request())
    sent = [r.headers["authorization"] for r in fake_api.received if r.path == "/v2/chat"]
    assert sent == [f"Bearer {KEY}", "Bearer co-rotated-key-987654"]


async def test_unreachable_host_is_reported_unavailable(keys_file: KeysFile) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = CohereProvider(keys_file.keys, timeout_seconds=5, base_url=f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(ProviderUnavailableError, match="Cannot reach Cohere"):
            await provider.complete(request())
    finally:
        await provider.aclose()


async def test_a_key_the_api_refuses_lists_the_models_unavailable_naming_the_key(
    provider: CohereProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("GET", "/v1/models", lambda _: error(401, f"invalid api token {KEY}"))
    listed = chat_models(await provider.list_models())
    assert [m.name for m in listed] == [m.name for m in CURATED_MODELS], "the names stay listed"
    assert not any(m.available for m in listed)
    reason = listed[0].unavailable_reason or ""
    assert "the key COHERE_API_KEY was refused (HTTP 401)" in reason and KEY not in reason
    assert await provider.diagnose() == [
        Diagnosis("cohere", "error", f"0 of {len(CURATED_MODELS) + len(EMBEDDING_MODELS)} models available"),
        Diagnosis("cohere", "error", reason),  # said once, not once per model
    ]
    fake_api.on("GET", "/v1/models", lambda _: JSONResponse({"models": []}))
    await provider.list_models()
    assert len([r for r in fake_api.received if r.path == "/v1/models"]) == 1, "kept until refresh"
    await provider.refresh()
    assert all(m.available for m in await provider.list_models())


async def test_an_unreachable_api_lists_the_models_unavailable_as_unreachable(keys_file: KeysFile) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = CohereProvider(keys_file.keys, timeout_seconds=5, base_url=f"http://127.0.0.1:{port}")
    try:
        listed = chat_models(await provider.list_models())
    finally:
        await provider.aclose()
    assert [m.name for m in listed] == [m.name for m in CURATED_MODELS]
    assert not any(m.available for m in listed)
    reason = listed[0].unavailable_reason or ""
    assert f"Cannot reach Cohere: endpoint http://127.0.0.1:{port} did not answer" in reason
    assert "check COHERE_BASE_URL or the network" in reason


async def test_openais_structured_output_penalties_and_seed_map_onto_chat_v2(
    provider: CohereProvider, fake_api: FakeAPI
) -> None:
    fake_api.on("POST", "/v2/chat", lambda _: stream_events("COMPLETE"))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    asked = request(
        response_format=ResponseFormat("json_schema", schema, "city"),
        presence_penalty=0.5,
        frequency_penalty=0.25,
        seed=7,
    )
    [model] = [m for m in await provider.list_models() if m.name == MODEL]
    assert check_features(model, asked) is asked  # Cohere declares what it maps
    [_ async for _ in provider.stream(asked)]
    body = fake_api.received[-1].body
    assert body["response_format"] == {"type": "json_object", "json_schema": schema}
    assert (body["presence_penalty"], body["frequency_penalty"], body["seed"]) == (0.5, 0.25, 7)
    with pytest.raises(InvalidRequestError, match="logprobs"):
        check_features(model, request(logprobs=True))


async def test_embeddings_go_through_the_sdk_embed_call_in_order_with_billed_tokens(
    provider: CohereProvider, fake_api: FakeAPI
) -> None:
    def embed_reply(received: Received) -> Response:
        texts = received.body["texts"]
        vectors = [[float(len(text)), 0.5] for text in texts]
        return JSONResponse(
            {
                "id": "e1",
                "response_type": "embeddings_by_type",
                "embeddings": {"float": vectors},
                "texts": texts,
                "meta": {"billed_units": {"input_tokens": 3 * len(texts)}},
            }
        )

    fake_api.on("POST", "/v2/embed", embed_reply)
    listed = {m.name: m for m in await provider.list_models()}
    assert "embeddings" in listed["embed-v4.0"].features and "embeddings" not in listed[MODEL].features
    result = await provider.embed(EmbeddingRequest("embed-v4.0", ("a", "bbb"), dimensions=256))
    assert result.vectors == ((1.0, 0.5), (3.0, 0.5))
    assert result.usage is not None and result.usage.prompt_tokens == 6
    [sent] = [r for r in fake_api.received if r.path == "/v2/embed"]
    assert sent.body["model"] == "embed-v4.0" and sent.body["texts"] == ["a", "bbb"]
    assert sent.body["output_dimension"] == 256 and sent.body["embedding_types"] == ["float"]
