"""AzureOpenAIProvider, configured exactly as documented, against a real local HTTP server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Reply
from genai_chatbot.models.errors import ProviderUnavailableError, RateLimitedError
from genai_chatbot.models.providers.azure_openai import AzureOpenAIProvider
from genai_chatbot.models.types import ChatRequest, EmbeddingRequest, Message
from genai_chatbot.secrets import FileKeySource, ProviderKeys

DEPLOYMENT_PATH = "/openai/deployments/Model1DeploymentName/chat/completions"
REQUEST = ChatRequest(model="Model1", messages=(Message("user", "Hi"),), max_tokens=16)


def documented_keys(base: str) -> dict[str, str]:
    """The keys secret as the documentation shows it, pointing at `base`."""
    return {
        "AZURE_OPENAI_MODELS": "Model1,Model2",
        "AZURE_OPENAI_API_TYPE__Model1": "azure",
        "AZURE_OPENAI_API_VERSION__Model1": "2023-05-15",
        "AZURE_OPENAI_API_BASE__Model1": base,
        "AZURE_OPENAI_API_KEY__Model1": "model1-secret-key",
        "AZURE_OPENAI_API_DEPLOYMENT_NAME__Model1": "Model1DeploymentName",
        "AZURE_OPENAI_API_TYPE__Model2": "azure",
        "AZURE_OPENAI_API_VERSION__Model2": "2024-02-01",
        "AZURE_OPENAI_API_BASE__Model2": base,
        "AZURE_OPENAI_API_KEY__Model2": "model2-secret-key",
        "AZURE_OPENAI_API_DEPLOYMENT_NAME__Model2": "Model2DeploymentName",
    }


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def keys_file(tmp_path: Path, fake: FakeOpenAI) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(documented_keys(fake.url)))
    return path


@pytest.fixture
async def provider(keys_file: Path) -> AsyncIterator[AzureOpenAIProvider]:
    azure = AzureOpenAIProvider(ProviderKeys([FileKeySource(keys_file)], ttl_seconds=0), timeout_seconds=10)
    yield azure
    await azure.aclose()


def edit_keys(path: Path, **changes: str | None) -> None:
    keys = json.loads(path.read_text())
    for name, value in changes.items():
        if value is None:
            keys.pop(name, None)
        else:
            keys[name] = value
    path.write_text(json.dumps(keys))


async def test_the_documented_keys_give_one_model_per_entry(provider: AzureOpenAIProvider) -> None:
    models = await provider.list_models()
    assert [m.id for m in models] == ["azure_openai/Model1", "azure_openai/Model2"]
    assert all(m.available for m in models)


async def test_a_model_with_a_missing_key_is_unavailable_naming_that_key(
    provider: AzureOpenAIProvider, keys_file: Path
) -> None:
    edit_keys(keys_file, AZURE_OPENAI_API_KEY__Model2=None, AZURE_OPENAI_API_DEPLOYMENT_NAME__Model2=None)
    model1, model2 = await provider.list_models()
    assert model1.available
    assert not model2.available and model2.unavailable_reason is not None
    assert "AZURE_OPENAI_API_KEY__Model2" in model2.unavailable_reason
    assert "AZURE_OPENAI_API_DEPLOYMENT_NAME__Model2" in model2.unavailable_reason
    assert "secret-key" not in model2.unavailable_reason
    with pytest.raises(ProviderUnavailableError, match="AZURE_OPENAI_API_KEY__Model2"):
        await provider.complete(ChatRequest(model="Model2", messages=REQUEST.messages))


async def test_the_models_list_is_trimmed_and_empty_items_are_ignored(
    provider: AzureOpenAIProvider, keys_file: Path
) -> None:
    edit_keys(keys_file, AZURE_OPENAI_MODELS=" Model1, ,Model2 ")
    assert [m.id for m in await provider.list_models()] == ["azure_openai/Model1", "azure_openai/Model2"]


async def test_without_azure_keys_nothing_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("{}")
    assert await AzureOpenAIProvider(ProviderKeys([FileKeySource(path)], ttl_seconds=0)).list_models() == []


async def test_a_stream_goes_to_the_deployment_with_the_api_version_and_api_key(
    provider: AzureOpenAIProvider, fake: FakeOpenAI
) -> None:
    chunks = [c async for c in provider.stream(REQUEST)]
    assert "".join(c.text for c in chunks) == "Hello, world"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    sent = fake.last("/chat/completions")
    assert sent.path == DEPLOYMENT_PATH
    assert sent.query == {"api-version": ["2023-05-15"]}
    assert sent.headers["api-key"] == "model1-secret-key"
    assert "authorization" not in sent.headers
    assert sent.body["model"] == "Model1DeploymentName" and sent.body["stream"] is True


async def test_a_whole_reply_is_posted_to_the_same_deployment(provider: AzureOpenAIProvider, fake: FakeOpenAI) -> None:
    result = await provider.complete(REQUEST)
    assert result.text == "Hello, world"
    sent = fake.last("/chat/completions")
    assert (sent.path, sent.query) == (DEPLOYMENT_PATH, {"api-version": ["2023-05-15"]})
    assert sent.headers["api-key"] == "model1-secret-key"
    assert sent.body["max_tokens"] == 16 and "stream" not in sent.body


async def test_each_model_uses_its_own_version_and_key(provider: AzureOpenAIProvider, fake: FakeOpenAI) -> None:
    [c async for c in provider.stream(ChatRequest(model="Model2", messages=REQUEST.messages))]
    sent = fake.last("/chat/completions")
    assert sent.path == "/openai/deployments/Model2DeploymentName/chat/completions"
    assert sent.query == {"api-version": ["2024-02-01"]}
    assert sent.headers["api-key"] == "model2-secret-key"


async def test_a_rotated_key_is_sent_on_the_next_request(
    provider: AzureOpenAIProvider, fake: FakeOpenAI, keys_file: Path
) -> None:
    await provider.complete(REQUEST)
    edit_keys(keys_file, AZURE_OPENAI_API_KEY__Model1="rotated-model1-key")
    [c async for c in provider.stream(REQUEST)]
    assert fake.last("/chat/completions").headers["api-key"] == "rotated-model1-key"


async def test_azure_errors_use_the_shared_mapping(provider: AzureOpenAIProvider, fake: FakeOpenAI) -> None:
    fake.answer = lambda _: Reply(
        429, json={"error": {"code": "429", "message": "Try again."}}, headers={"retry-after": "3"}
    )
    with pytest.raises(RateLimitedError) as caught:
        [c async for c in provider.stream(REQUEST)]
    assert caught.value.retry_after == 3.0
    fake.answer = lambda _: Reply(401, json={"error": {"code": "401", "message": "Access denied due to invalid key."}})
    with pytest.raises(ProviderUnavailableError, match="AZURE_OPENAI_API_KEY__Model1 was refused") as refused:
        await provider.complete(REQUEST)
    assert "model1-secret-key" not in refused.value.message


async def test_embedding_deployments_are_listed_apart_and_embed_through_their_deployment(
    provider: AzureOpenAIProvider, keys_file: Path, fake: FakeOpenAI
) -> None:
    edit_keys(
        keys_file,
        AZURE_OPENAI_EMBEDDING_MODELS="Embed1",
        AZURE_OPENAI_API_TYPE__Embed1="azure",
        AZURE_OPENAI_API_VERSION__Embed1="2024-02-01",
        AZURE_OPENAI_API_BASE__Embed1=fake.url,
        AZURE_OPENAI_API_KEY__Embed1="embed1-secret-key",
        AZURE_OPENAI_API_DEPLOYMENT_NAME__Embed1="text-embedding-3-small",
    )
    models = {m.name: m for m in await provider.list_models()}
    assert models["Embed1"].features == frozenset({"embeddings"}) and "embeddings" not in models["Model1"].features
    result = await provider.embed(EmbeddingRequest("Embed1", ("hello",)))
    assert result.vectors == ((5.0, 0.0),)
    sent = fake.last("/embeddings")
    assert sent.path == "/openai/deployments/text-embedding-3-small/embeddings"
    assert sent.query == {"api-version": ["2024-02-01"]} and sent.headers["api-key"] == "embed1-secret-key"
    assert sent.body["model"] == "text-embedding-3-small" and sent.body["input"] == ["hello"]
