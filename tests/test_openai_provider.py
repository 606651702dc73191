"""OpenAIProvider against a real local HTTP server: listing, streams and whole replies over our aiohttp path."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Recorded, Reply, chunk, default_reply, sse
from genai_chatbot.config import OpenAICompatibleEndpoint
from genai_chatbot.models.errors import InvalidRequestError, ProviderError, ProviderUnavailableError, RateLimitedError
from genai_chatbot.models.providers.openai import OpenAICompatibleProvider, OpenAIProvider
from genai_chatbot.models.types import ChatChunk, ChatRequest, EmbeddingRequest, ImagePart, Message, TextPart
from genai_chatbot.secrets import FileKeySource, ProviderKeys

KEY = "sk-test-abcdef1234567890"
REQUEST = ChatRequest(
    model="gpt-4o-mini",
    messages=(Message("user", "Hi"),),
    system="Be brief.",
    temperature=0.0,
    max_tokens=20,
)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.json"


def write_keys(path: Path, **values: str) -> None:
    path.write_text(json.dumps(values))


@pytest.fixture
async def provider(fake: FakeOpenAI, keys_file: Path) -> AsyncIterator[OpenAIProvider]:
    write_keys(keys_file, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=f"{fake.url}/v1", OPENAI_ORG_ID="org-42")
    openai_provider = OpenAIProvider(ProviderKeys([FileKeySource(keys_file)], ttl_seconds=0), timeout_seconds=10)
    yield openai_provider
    await openai_provider.aclose()


async def collect(provider: OpenAIProvider, request: ChatRequest = REQUEST) -> list[ChatChunk]:
    return [c async for c in provider.stream(request)]


async def test_models_appear_when_the_key_is_added_and_disappear_when_removed(
    fake: FakeOpenAI, keys_file: Path
) -> None:
    write_keys(keys_file)
    provider = OpenAIProvider(ProviderKeys([FileKeySource(keys_file)], ttl_seconds=0))
    try:
        assert await provider.list_models() == []
        write_keys(keys_file, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=f"{fake.url}/v1")
        models = await provider.list_models()
        assert [m.id for m in models] == [
            "openai/chatgpt-4o-latest",
            "openai/gpt-4o",
            "openai/gpt-4o-mini",
            "openai/o3-mini",
            "openai/text-embedding-3-small",
        ]
        assert all(m.available for m in models)
        # Embedding models are listed for /v1/embeddings; the vision families take images, "-mini" reasoning not.
        assert {m.name for m in models if "embeddings" in m.features} == {"text-embedding-3-small"}
        assert {m.name for m in models if "image" in m.input_modalities} == {
            "chatgpt-4o-latest",
            "gpt-4o",
            "gpt-4o-mini",
        }
        assert {m.name: m.context_window for m in models}["gpt-4o"] == 128_000
        assert fake.last("/models").headers["authorization"] == f"Bearer {KEY}"
        write_keys(keys_file)
        assert await provider.list_models() == []
    finally:
        await provider.aclose()


async def test_a_changed_key_is_used_for_the_next_request(
    provider: OpenAIProvider, fake: FakeOpenAI, keys_file: Path
) -> None:
    await collect(provider)
    assert fake.last("/chat/completions").headers["authorization"] == f"Bearer {KEY}"
    write_keys(keys_file, OPENAI_API_KEY="sk-rotated-0000000000", OPENAI_BASE_URL=f"{fake.url}/v1")
    await collect(provider)
    assert fake.last("/chat/completions").headers["authorization"] == "Bearer sk-rotated-0000000000"


async def test_the_model_list_is_cached_until_refresh(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    await provider.list_models()
    await provider.list_models()
    assert sum(r.path.endswith("/models") for r in fake.requests) == 1
    await provider.refresh()
    await provider.list_models()
    assert sum(r.path.endswith("/models") for r in fake.requests) == 2


async def test_streaming_sends_the_request_openai_expects_and_yields_text_then_usage(
    provider: OpenAIProvider, fake: FakeOpenAI
) -> None:
    chunks = await collect(provider)
    assert "".join(c.text for c in chunks) == "Hello, world"
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        9,
        3,
    )
    sent = fake.last("/chat/completions")
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["openai-organization"] == "org-42"
    assert sent.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.0,
        "max_completion_tokens": 20,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_a_whole_reply_is_posted_with_the_same_request(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    result = await provider.complete(REQUEST)
    assert (result.text, result.finish_reason) == ("Hello, world", "stop")
    assert result.usage is not None and result.usage.total_tokens == 12
    sent = fake.last("/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "gpt-4o-mini" and "stream" not in sent.body


async def test_a_server_that_rejects_stream_options_still_streams_without_usage(
    provider: OpenAIProvider, fake: FakeOpenAI
) -> None:
    def answer(request: Recorded) -> Reply:
        if request.body and "stream_options" in request.body:
            return Reply(400, json={"error": {"message": "Unrecognized request argument supplied: stream_options"}})
        return default_reply(request)

    fake.answer = answer
    chunks = await collect(provider)
    assert "".join(c.text for c in chunks) == "Hello, world"
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is None


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "complete"])
async def test_429_is_rate_limited_with_the_retry_after_header(
    provider: OpenAIProvider, fake: FakeOpenAI, streaming: bool
) -> None:
    fake.answer = lambda _: Reply(429, json={"error": {"message": "Rate limit reached."}}, headers={"retry-after": "7"})
    with pytest.raises(RateLimitedError) as caught:
        await (collect(provider) if streaming else provider.complete(REQUEST))
    assert caught.value.retry_after == 7.0
    assert "Rate limit reached." in caught.value.message


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "complete"])
async def test_401_makes_openai_unavailable_naming_the_key_but_not_its_value(
    provider: OpenAIProvider, fake: FakeOpenAI, streaming: bool
) -> None:
    refused = {"error": {"message": f"Incorrect API key provided: {KEY}.", "code": "invalid_api_key"}}
    fake.answer = lambda _: Reply(401, json=refused)
    with pytest.raises(ProviderUnavailableError) as caught:
        await (collect(provider) if streaming else provider.complete(REQUEST))
    assert "OPENAI_API_KEY" in caught.value.message and "keys secret" in caught.value.message
    assert KEY not in caught.value.message


async def test_a_refused_key_lists_openai_as_unavailable_with_the_fix(
    provider: OpenAIProvider, fake: FakeOpenAI
) -> None:
    fake.answer = lambda _: Reply(401, json={"error": {"message": f"Incorrect API key provided: {KEY}."}})
    [model] = await provider.list_models()
    assert not model.available and model.unavailable_reason is not None
    assert "OPENAI_API_KEY" in model.unavailable_reason and KEY not in model.unavailable_reason


async def test_400_is_an_invalid_request_carrying_the_message_without_the_key(
    provider: OpenAIProvider, fake: FakeOpenAI
) -> None:
    fake.answer = lambda _: Reply(400, json={"error": {"message": f"max_tokens is too large (key {KEY})"}})
    with pytest.raises(InvalidRequestError, match="max_tokens is too large") as caught:
        await collect(provider)
    assert KEY not in caught.value.message


async def test_an_error_event_in_the_middle_of_the_stream_raises_after_the_text_so_far(
    provider: OpenAIProvider, fake: FakeOpenAI
) -> None:
    error = {"error": {"message": "The server had an error while processing your request."}}
    fake.answer = lambda _: Reply(events=[sse(chunk("Hel")), sse(error)])
    received: list[str] = []

    async def read() -> None:
        async for piece in provider.stream(REQUEST):
            received.append(piece.text)

    with pytest.raises(ProviderError, match="in the middle of the reply: The server had an error"):
        await read()
    assert received == ["Hel"]


async def test_a_stream_cut_before_the_end_is_a_provider_error(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    fake.answer = lambda _: Reply(events=[sse(chunk("Hel"))])
    with pytest.raises(ProviderError, match="before the reply was finished"):
        await collect(provider)


async def test_without_a_key_streaming_says_which_key_to_add(keys_file: Path) -> None:
    write_keys(keys_file)
    provider = OpenAIProvider(ProviderKeys([FileKeySource(keys_file)], ttl_seconds=0))
    with pytest.raises(ProviderUnavailableError, match="add OPENAI_API_KEY to the keys secret"):
        await collect(provider)


async def test_an_unreachable_base_url_is_unavailable_with_the_reason(keys_file: Path) -> None:
    write_keys(keys_file, OPENAI_API_KEY=KEY, OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    provider = OpenAIProvider(ProviderKeys([FileKeySource(keys_file)], ttl_seconds=0))
    try:
        with pytest.raises(ProviderUnavailableError, match=r"http://127.0.0.1:9/v1 did not answer: .*server running"):
            await collect(provider)
    finally:
        await provider.aclose()


PNG_B64 = "iVBORw0KGgpyZXN0"  # a PNG signature and "rest": the provider forwards bytes, it does not parse them


async def test_a_compatible_endpoint_names_its_vision_and_embedding_models_and_serves_both(fake: FakeOpenAI) -> None:
    endpoint = OpenAICompatibleEndpoint(
        name="ollama",
        base_url=f"{fake.url}/v1",
        models=["llava", "llama3"],
        image_models=["llava"],
        embedding_models=["nomic-embed-text"],
    )
    provider = OpenAICompatibleProvider(endpoint, ProviderKeys([]), timeout_seconds=10)
    try:
        models = {m.name: m for m in await provider.list_models()}
        assert list(models) == ["llava", "llama3", "nomic-embed-text"]
        assert models["llava"].input_modalities == ("text", "image") and models["llama3"].input_modalities == ("text",)
        assert models["nomic-embed-text"].features == frozenset({"embeddings"})
        assert "embeddings" not in models["llava"].features
        result = await provider.embed(EmbeddingRequest("nomic-embed-text", ("ab", "c")))
        assert result.vectors == ((2.0, 0.0), (1.0, 1.0))  # in input order, though listed in reverse
        assert result.usage is not None and result.usage.prompt_tokens == 3
        assert fake.last("/embeddings").body["model"] == "nomic-embed-text"
        image = ImagePart("image/png", base64.b64decode(PNG_B64), "high")
        parts = (TextPart("Look:"), image)
        await provider.complete(ChatRequest(model="llava", messages=(Message("user", "Look:", parts),)))
        assert fake.last("/chat/completions").body["messages"] == [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgpyZXN0", "detail": "high"},
                    },
                ],
            }
        ]
    finally:
        await provider.aclose()
